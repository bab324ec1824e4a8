import { useState } from "preact/hooks"
import { api, problem } from "../api.ts"
import { useLoad } from "../hooks.ts"
import { Empty, ErrorNote, Page, shortId, Table, When } from "../ui.tsx"

/** Sessions waiting for a human (status awaiting_approval), oldest first, with approve / deny. */
export const Approvals = () => {
  const pending = useLoad(() => api.GET("/v1/approvals"), [], 3000)
  const [error, setError] = useState<string | undefined>(undefined)
  const decide = async (id: string, verdict: "approve" | "deny") => {
    setError(undefined)
    const params = { params: { path: { id } } }
    const reply = verdict === "approve"
      ? await api.POST("/v1/sessions/{id}/approve", params)
      : await api.POST("/v1/sessions/{id}/deny", params)
    if (reply.error !== undefined) setError(problem(reply.error))
    pending.reload()
  }
  return (
    <Page title="Approvals">
      <ErrorNote error={pending.error ?? error} />
      <Table label="Pending approvals" head={["Session", "Daemon", "Snapshot", "Waiting since", "Expires", "Decision"]}>
        {(pending.data ?? []).length === 0 ? <Empty columns={6} text="Nothing waiting for approval." /> : null}
        {(pending.data ?? []).map((p) => (
          <tr key={p.sessionId} data-session={p.sessionId}>
            <td>
              <a href={`/sessions/${p.sessionId}`}>{shortId(p.sessionId)}</a>
            </td>
            <td>{p.session.daemon ?? "—"}</td>
            <td>{p.session.spec.snapshot}</td>
            <td>
              <When at={p.createdAt} />
            </td>
            <td>
              <When at={p.expiresAt} />
            </td>
            <td class="actions">
              <button
                type="button"
                aria-label={`Approve session ${shortId(p.sessionId)}`}
                onClick={() => decide(p.sessionId, "approve")}
              >
                Approve
              </button>
              <button
                type="button"
                class="danger"
                aria-label={`Deny session ${shortId(p.sessionId)}`}
                onClick={() => decide(p.sessionId, "deny")}
              >
                Deny
              </button>
            </td>
          </tr>
        ))}
      </Table>
    </Page>
  )
}
