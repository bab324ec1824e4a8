import { api } from "../api.ts"
import { useLoad } from "../hooks.ts"
import { Empty, ErrorNote, ms, Page, Status, Table, When } from "../ui.tsx"

/** Snapshots and images with their build progress (phases so far), refreshed while anything builds. */
export const Snapshots = () => {
  const snapshots = useLoad(() => api.GET("/v1/snapshots"), [], 2000)
  return (
    <Page title="Snapshots and images">
      <ErrorNote error={snapshots.error} />
      <Table label="Snapshots" head={["Name", "Node", "Status", "Progress", "Started", "Detail"]}>
        {(snapshots.data ?? []).length === 0 ? <Empty columns={6} text="No snapshots." /> : null}
        {(snapshots.data ?? []).map((s) => (
          <tr key={`${s.name}@${s.node}`}>
            <td>{s.name}</td>
            <td>{s.node}</td>
            <td>
              <Status status={s.status} />
            </td>
            <td>
              {s.status === "building" ? <progress aria-label={`${s.name} building`} /> : null}{" "}
              {(s.phases ?? []).map((p) => `${p.phase} ${typeof p.ms === "number" ? ms(Math.round(p.ms)) : ""}`)
                .join(" → ") || s.phase || "—"}
            </td>
            <td>
              <When at={s.startedAt} />
            </td>
            <td>{s.error ?? (s.refusedHosts?.length ? `refused: ${s.refusedHosts.join(", ")}` : "")}</td>
          </tr>
        ))}
      </Table>
    </Page>
  )
}
