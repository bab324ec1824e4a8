import { api } from "../api.ts"
import { useLoad } from "../hooks.ts"
import { Empty, ErrorNote, Page, Table, When } from "../ui.tsx"

/** Every daemon of the project, with its triggers and whether it is enabled. */
export const Daemons = () => {
  const daemons = useLoad(() => api.GET("/v1/daemons"), [], 5000)
  return (
    <Page title="Daemons">
      <ErrorNote error={daemons.error} />
      <Table label="Daemons" head={["Daemon", "Enabled", "Triggers", "Snapshot", "Updated"]}>
        {(daemons.data ?? []).length === 0 ? <Empty columns={5} text="No daemons." /> : null}
        {(daemons.data ?? []).map((d) => (
          <tr key={d.name}>
            <td>
              <a href={`/daemons/${d.name}`}>{d.name}</a>
            </td>
            <td>{d.enabled ? "yes" : "no"}</td>
            <td>{d.triggers.map((t) => `${t.kind}:${t.name}`).join(", ") || "—"}</td>
            <td>{d.snapshot ?? "—"}</td>
            <td>
              <When at={d.updatedAt} />
            </td>
          </tr>
        ))}
      </Table>
    </Page>
  )
}
