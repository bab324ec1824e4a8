/**
 * A Kubernetes API exchange for the node-pod watcher, replayed by a local HTTPS server.
 *
 * Provenance, honestly: this is NOT a capture from a live cluster (none is reachable from the
 * machines paws is built on). It is written out by hand in the exact wire format of the core/v1
 * API — a PodList for the list, newline-delimited WatchEvents (`{"type","object"}`) for the watch,
 * and the `Status` object with `code: 410, reason: "Expired"` that the API server sends as an
 * ERROR event when a watch's resourceVersion has been compacted — trimmed to the fields paws
 * reads plus enough surrounding ones to look like the real thing. Each step is one HTTP request.
 */
const selector = "app.kubernetes.io/name=paws-node"

const pod = (name: string, ip: string, ready: boolean, rv: string, port: number, extra: object = {}) => ({
  kind: "Pod",
  apiVersion: "v1",
  metadata: {
    name,
    namespace: "paws",
    uid: `uid-${name}`,
    resourceVersion: rv,
    labels: { "app.kubernetes.io/name": "paws-node", "app.kubernetes.io/part-of": "paws" },
    ...extra,
  },
  spec: {
    nodeName: `kvm-${name}`,
    hostNetwork: true,
    containers: [{ name: "node", image: "paws:0.1.0", ports: [{ name: "rpc", containerPort: port, protocol: "TCP" }] }],
  },
  status: {
    phase: "Running",
    podIP: ip,
    conditions: [
      { type: "Initialized", status: "True" },
      { type: "Ready", status: ready ? "True" : "False" },
      { type: "ContainersReady", status: ready ? "True" : "False" },
      { type: "PodScheduled", status: "True" },
    ],
  },
})

export interface ExchangeStep {
  /** What the request must ask for: path and the query parameters that matter. */
  readonly expect: { readonly watch: boolean; readonly resourceVersion?: string }
  /** The reply: a JSON body (list) or watch lines; `hold` keeps the watch open after its lines. */
  readonly status: number
  readonly body?: unknown
  readonly lines?: ReadonlyArray<unknown>
  readonly hold?: boolean
}

/** Builds the exchange for node pods whose RPC ports are the given (local) ports. */
export const podWatchExchange = (ports: { a: number; b: number; c: number }) => ({
  namespace: "paws",
  selector,
  steps: [
    {
      expect: { watch: false },
      status: 200,
      body: {
        kind: "PodList",
        apiVersion: "v1",
        metadata: { resourceVersion: "100" },
        items: [pod("node-a", "127.0.0.1", true, "90", ports.a), pod("node-b", "127.0.0.1", false, "95", ports.b)],
      },
    },
    {
      expect: { watch: true, resourceVersion: "100" },
      status: 200,
      lines: [
        { type: "ADDED", object: pod("node-c", "127.0.0.1", true, "101", ports.c) },
        { type: "MODIFIED", object: pod("node-b", "127.0.0.1", true, "102", ports.b) },
        { type: "MODIFIED", object: pod("node-a", "127.0.0.1", false, "103", ports.a) },
        { type: "BOOKMARK", object: { kind: "Pod", apiVersion: "v1", metadata: { resourceVersion: "105" } } },
      ],
    },
    {
      // The previous watch ended (its timeout): resume from the bookmark's version.
      expect: { watch: true, resourceVersion: "105" },
      status: 200,
      lines: [
        {
          type: "DELETED",
          object: pod("node-b", "127.0.0.1", true, "106", ports.b, { deletionTimestamp: "2026-12-07T01:00:00Z" }),
        },
        {
          type: "ERROR",
          object: {
            kind: "Status",
            apiVersion: "v1",
            metadata: {},
            status: "Failure",
            message: "too old resource version: 106 (180)",
            reason: "Expired",
            code: 410,
          },
        },
      ],
    },
    {
      // 410 Gone: the watcher must relist; node-c is gone meanwhile, node-a is back and ready.
      expect: { watch: false },
      status: 200,
      body: {
        kind: "PodList",
        apiVersion: "v1",
        metadata: { resourceVersion: "200" },
        items: [pod("node-a", "127.0.0.1", true, "190", ports.a)],
      },
    },
    {
      // The version expired before the watch even started: the API answers the request itself with 410.
      expect: { watch: true, resourceVersion: "200" },
      status: 410,
      body: {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: "too old resource version: 200 (260)",
        reason: "Expired",
        code: 410,
      },
    },
    {
      expect: { watch: false },
      status: 200,
      body: {
        kind: "PodList",
        apiVersion: "v1",
        metadata: { resourceVersion: "300" },
        items: [pod("node-a", "127.0.0.1", true, "190", ports.a)],
      },
    },
    { expect: { watch: true, resourceVersion: "300" }, status: 200, lines: [], hold: true },
  ] satisfies ReadonlyArray<ExchangeStep>,
})
