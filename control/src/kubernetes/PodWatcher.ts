// deno-lint-ignore-file no-explicit-any -- Kubernetes objects are read loosely: only the fields below matter
import { Effect, Stream } from "effect"
import { KubeApiError, type KubeApiTarget, kubeGet, kubeWatch } from "./KubeApi.ts"

/** What discovery needs of a node pod: where to dial it and whether it may take work. */
export interface NodePod {
  readonly name: string
  readonly ip: string | undefined
  readonly ready: boolean
  /** The container port named `rpc`, when the pod declares one. */
  readonly rpcPort: number | undefined
}

/** What the watcher tells its owner: a whole fresh list (start, relist) or one pod's change. */
export type PodChange =
  | { readonly _tag: "Listed"; readonly pods: ReadonlyArray<NodePod> }
  | { readonly _tag: "Upserted"; readonly pod: NodePod }
  | { readonly _tag: "Deleted"; readonly name: string }

export const nodePod = (pod: any): NodePod => {
  const conditions: Array<any> = pod?.status?.conditions ?? []
  const ports: Array<any> = (pod?.spec?.containers ?? []).flatMap((c: any) => c?.ports ?? [])
  return {
    name: String(pod?.metadata?.name ?? ""),
    ip: typeof pod?.status?.podIP === "string" && pod.status.podIP !== "" ? pod.status.podIP : undefined,
    // A pod being deleted keeps Ready until its containers stop: it takes no new work from then on.
    ready: pod?.metadata?.deletionTimestamp == null &&
      conditions.some((c) => c?.type === "Ready" && c?.status === "True"),
    rpcPort: ports.find((p) => p?.name === "rpc")?.containerPort,
  }
}

/** A watch that must start over from a fresh list: the API no longer has our resourceVersion. */
const isGone = (e: KubeApiError) => e.status === 410

/**
 * Lists the pods matching `selector` in `namespace`, then watches from the list's
 * resourceVersion, resuming each closed watch from the last version seen (bookmarks included).
 * When the API says that version is gone (410, as an HTTP status or an ERROR event) it relists.
 * Other failures end the effect; the caller retries with backoff.
 */
export const watchPods = <R>(
  target: KubeApiTarget,
  namespace: string,
  selector: string,
  onChange: (change: PodChange) => Effect.Effect<void, never, R>,
): Effect.Effect<never, KubeApiError, R> => {
  const base = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods?labelSelector=${encodeURIComponent(selector)}`
  const list = Effect.gen(function* () {
    const body: any = yield* kubeGet(target, base)
    yield* onChange({ _tag: "Listed", pods: (body?.items ?? []).map(nodePod) })
    return String(body?.metadata?.resourceVersion ?? "")
  })
  const watchFrom = (version: { current: string }) =>
    kubeWatch(
      target,
      `${base}&watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(version.current)}`,
    ).pipe(
      Stream.runForEach((event: any) => {
        const object = event?.object
        const rv = object?.metadata?.resourceVersion
        if (event?.type === "ERROR") {
          return Effect.fail(
            new KubeApiError({ message: `watch error: ${object?.message ?? "unknown"}`, status: object?.code }),
          )
        }
        if (typeof rv === "string" && rv !== "") version.current = rv
        if (event?.type === "ADDED" || event?.type === "MODIFIED") {
          return onChange({ _tag: "Upserted", pod: nodePod(object) })
        }
        if (event?.type === "DELETED") return onChange({ _tag: "Deleted", name: String(object?.metadata?.name) })
        return Effect.void // BOOKMARK: only the version moves
      }),
    )
  const listThenWatch: Effect.Effect<void, KubeApiError, R> = Effect.gen(function* () {
    const version = { current: yield* list }
    // A watch that ends cleanly (the API's timeout) resumes where it stopped.
    yield* Effect.forever(Effect.suspend(() => watchFrom(version)))
  }).pipe(
    Effect.catchIf(isGone, () => Effect.logInfo("pod watch expired (410 Gone): relisting")),
  )
  return Effect.forever(listThenWatch)
}
