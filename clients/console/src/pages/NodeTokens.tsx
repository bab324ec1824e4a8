import { useState } from "preact/hooks"
import { api, problem } from "../api.ts"
import { useLoad } from "../hooks.ts"
import { Empty, ErrorNote, Table, When } from "../ui.tsx"

/** Tokens nodes connect with (admin): create (shown once), revoke. */
export const NodeTokens = () => {
  const tokens = useLoad(() => api.GET("/v1/nodes/tokens"), [])
  const [secret, setSecret] = useState<string | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const create = async (event: Event) => {
    event.preventDefault()
    const form = event.currentTarget as HTMLFormElement
    const reply = await api.POST("/v1/nodes/tokens", { body: { name: String(new FormData(form).get("name")) } })
    if (reply.error !== undefined) return setError(problem(reply.error))
    setError(undefined)
    setSecret(reply.data.token)
    form.reset()
    tokens.reload()
  }
  const revoke = async (id: string) => {
    const reply = await api.DELETE("/v1/nodes/tokens/{id}", { params: { path: { id } } })
    if (reply.error !== undefined) setError(problem(reply.error))
    tokens.reload()
  }
  return (
    <>
      <h2>Node tokens</h2>
      <form class="create" onSubmit={create} aria-label="Create a node token">
        <label>
          Name <input name="name" required maxLength={128} />
        </label>
        <button type="submit">Create node token</button>
      </form>
      {secret === undefined ? null : (
        <div class="secret" role="status">
          <p>The node token, shown this once:</p>
          <code>{secret}</code>
          <button type="button" onClick={() => setSecret(undefined)}>Done</button>
        </div>
      )}
      <ErrorNote error={tokens.error ?? error} />
      <Table label="Node tokens" head={["Name", "Node", "Created", "Last used", "State"]}>
        {(tokens.data ?? []).length === 0 ? <Empty columns={5} text="No node tokens." /> : null}
        {(tokens.data ?? []).map((t) => (
          <tr key={t.id}>
            <td>{t.name}</td>
            <td>{t.nodeId ?? "any"}</td>
            <td>
              <When at={t.createdAt} />
            </td>
            <td>
              <When at={t.lastUsedAt} />
            </td>
            <td>
              {t.revokedAt === null
                ? (
                  <button
                    type="button"
                    class="danger"
                    aria-label={`Revoke node token ${t.name}`}
                    onClick={() => revoke(t.id)}
                  >
                    Revoke
                  </button>
                )
                : <span class="muted">revoked</span>}
            </td>
          </tr>
        ))}
      </Table>
    </>
  )
}
