import { api, problem, type Schemas } from "../api.ts"
import { useLoad } from "../hooks.ts"
import type { ProxyDecision } from "../sessionEvents.ts"
import { Empty, ErrorNote, ms, Table, When } from "../ui.tsx"

/** The spec as submitted, with credential header NAMES and env NAMES only (never values). */
export const SpecPanel = (props: { spec: Schemas["SessionSpecView"] }) => {
  const { spec } = props
  const w = spec.workload
  const env = "env" in w && w.env !== undefined ? Object.keys(w.env) : []
  return (
    <>
      <h2>Spec</h2>
      <dl class="facts">
        <dt>Snapshot</dt>
        <dd>{spec.snapshot}</dd>
        <dt>Workload</dt>
        <dd>{w.type}</dd>
        {w.type === "script"
          ? (
            <>
              <dt>Script</dt>
              <dd>
                <pre>{w.script}</pre>
              </dd>
            </>
          )
          : null}
        <dt>Environment names</dt>
        <dd>{env.length === 0 ? "—" : env.join(", ")}</dd>
        <dt>Resources</dt>
        <dd>{spec.resources.vcpus} vCPU, {spec.resources.memoryMB} MB</dd>
        <dt>Timeout</dt>
        <dd>{ms(spec.timeoutMs)}</dd>
        <dt>Allowed hosts</dt>
        <dd>{spec.network.allowOut.join(", ") || "—"}</dd>
        <dt>Injected headers</dt>
        <dd data-testid="credential-headers">
          {Object.entries(spec.network.credentials ?? {}).map(([host, c]) => `${host}: ${c.headers.join(", ")}`)
            .join("; ") || "—"}
        </dd>
      </dl>
    </>
  )
}

/** The proxy's decisions as they stream, and requests it holds for a human (approve / deny here). */
export const EgressPanel = (props: { id: string; decisions: ReadonlyArray<ProxyDecision> }) => {
  const held = useLoad(
    () => api.GET("/v1/sessions/{id}/egress-approvals", { params: { path: { id: props.id } } }),
    [props.id],
    3000,
  )
  const decide = async (requestId: string, verdict: "approve" | "deny") => {
    const params = { params: { path: { id: props.id, requestId } } }
    const reply = verdict === "approve"
      ? await api.POST("/v1/sessions/{id}/egress-approvals/{requestId}/approve", params)
      : await api.POST("/v1/sessions/{id}/egress-approvals/{requestId}/deny", params)
    if (reply.error !== undefined) alert(problem(reply.error))
    held.reload()
  }
  return (
    <>
      <h2>Egress</h2>
      {(held.data ?? []).filter((h) => h.status === "pending").map((h) => (
        <p key={h.requestId} class="held">
          Held: {h.method} {h.host}
          {h.path} (rule {h.rule}) <button type="button" onClick={() => decide(h.requestId, "approve")}>Allow</button>
          {" "}
          <button type="button" onClick={() => decide(h.requestId, "deny")}>Refuse</button>
        </p>
      ))}
      <Table label="Proxy decisions" head={["Time", "Decision", "Request", "Status", "Injected"]}>
        {props.decisions.length === 0 ? <Empty columns={5} text="No egress yet." /> : null}
        {props.decisions.map((d, i) => (
          <tr key={i}>
            <td>
              <When at={d.time} />
            </td>
            <td>{d.decision}{d.count === undefined ? "" : ` ×${d.count}`}</td>
            <td>{d.method ?? ""} {d.host}{d.path ?? ""}</td>
            <td>{d.status ?? "—"}</td>
            <td>{d.injected?.join(", ") ?? ""}</td>
          </tr>
        ))}
      </Table>
    </>
  )
}

/** Ports the session exposes (issue 17): their URLs and access mode. */
export const PortsPanel = (props: { id: string; live: boolean }) => {
  const ports = useLoad(
    () => api.GET("/v1/sessions/{id}/ports", { params: { path: { id: props.id } } }),
    [props.id, props.live],
    props.live ? 5000 : undefined,
  )
  return (
    <>
      <h2>Exposed ports</h2>
      <ErrorNote error={ports.error} />
      <Table label="Exposed ports" head={["Port", "Access", "URL", "Since"]}>
        {(ports.data ?? []).length === 0 ? <Empty columns={4} text="No ports exposed." /> : null}
        {(ports.data ?? []).map((p) => (
          <tr key={p.port}>
            <td>{p.port}</td>
            <td>{p.access}</td>
            <td>
              {props.live
                ? <a href={p.hostUrl ?? p.url} target="_blank" rel="noopener noreferrer">{p.hostUrl ?? p.url}</a>
                : <span class="muted">{p.hostUrl ?? p.url} (ended with the session)</span>}
            </td>
            <td>
              <When at={p.createdAt} />
            </td>
          </tr>
        ))}
      </Table>
    </>
  )
}
