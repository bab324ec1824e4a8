import { useState } from "preact/hooks"
import { api, problem, type Schemas } from "../api.ts"
import { useLoad } from "../hooks.ts"
import { Empty, ErrorNote, Page, Table, When } from "../ui.tsx"
import { NodeTokens } from "./NodeTokens.tsx"

const scopes: ReadonlyArray<Schemas["ApiScope"]> = ["read", "sessions:write", "approve", "admin"]

/** API keys: create (the secret is shown once, here), list, revoke; then node tokens the same way. */
export const Keys = () => {
  const keys = useLoad(() => api.GET("/v1/keys"), [])
  const [secret, setSecret] = useState<string | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const create = async (event: Event) => {
    event.preventDefault()
    const form = event.currentTarget as HTMLFormElement
    const data = new FormData(form)
    const chosen = scopes.filter((s) => data.get(`scope-${s}`) === "on")
    setError(undefined)
    const reply = await api.POST("/v1/keys", { body: { name: String(data.get("name")), scopes: [...chosen] } })
    if (reply.error !== undefined) return setError(problem(reply.error))
    setSecret(reply.data.secret)
    form.reset()
    keys.reload()
  }
  const revoke = async (key: Schemas["ApiKey"]) => {
    if (!confirm(`Revoke key ${key.name}? Programs using it stop working.`)) return
    const reply = await api.DELETE("/v1/keys/{id}", { params: { path: { id: key.id } } })
    if (reply.error !== undefined) setError(problem(reply.error))
    keys.reload()
  }
  return (
    <Page title="API keys">
      <form class="create" onSubmit={create} aria-label="Create an API key">
        <label>
          Name <input name="name" required maxLength={128} />
        </label>
        <fieldset>
          <legend>Scopes</legend>
          {scopes.map((s) => (
            <label key={s} class="check">
              <input type="checkbox" name={`scope-${s}`} defaultChecked={s === "read"} /> {s}
            </label>
          ))}
        </fieldset>
        <button type="submit">Create key</button>
      </form>
      {secret === undefined ? null : (
        <div class="secret" role="status">
          <p>The new key, shown this once — copy it now:</p>
          <code data-testid="new-secret">{secret}</code>
          <button type="button" onClick={() => setSecret(undefined)}>Done</button>
        </div>
      )}
      <ErrorNote error={keys.error ?? error} />
      <Table label="API keys" head={["Name", "Scopes", "Project", "Created", "Last used", "State"]}>
        {(keys.data ?? []).length === 0 ? <Empty columns={6} text="No keys." /> : null}
        {(keys.data ?? []).map((k) => (
          <tr key={k.id} data-key={k.name}>
            <td>{k.name}</td>
            <td>{k.scopes.join(", ")}</td>
            <td>{k.project}</td>
            <td>
              <When at={k.createdAt} />
            </td>
            <td>
              <When at={k.lastUsedAt} />
            </td>
            <td>
              {k.revokedAt === null
                ? (
                  <button type="button" class="danger" aria-label={`Revoke key ${k.name}`} onClick={() => revoke(k)}>
                    Revoke
                  </button>
                )
                : <span class="muted">revoked</span>}
            </td>
          </tr>
        ))}
      </Table>
      <NodeTokens />
    </Page>
  )
}
