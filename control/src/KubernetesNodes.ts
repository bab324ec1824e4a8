import { NodeSocket } from "@effect/platform-node"
import { Cause, Config, Effect, Fiber, Layer, Redacted } from "effect"
import { controlSettings } from "./ControlConfig.ts"
import { podNamespace } from "./kubernetes/KubeApi.ts"
import { type NodePod, type PodChange, watchPods } from "./kubernetes/PodWatcher.ts"
import { dialNodeForever } from "./StaticNodes.ts"

const kubernetesConfig = Config.all({
  selector: controlSettings.kubernetesNodeSelector.config,
  namespace: controlSettings.kubernetesNamespace.config,
  api: controlSettings.kubernetesApi.config,
  serviceAccountDir: controlSettings.kubernetesServiceAccountDir.config,
  port: controlSettings.kubernetesNodePort.config,
  token: controlSettings.staticNodesToken.config.pipe(Config.map((t) => t ?? Redacted.make(""))),
  serviceHost: Config.String("KUBERNETES_SERVICE_HOST").pipe(Config.withDefault("")),
  servicePort: Config.String("KUBERNETES_SERVICE_PORT").pipe(Config.withDefault("443")),
})

/** Where a ready pod is dialled; undefined while it has no IP or is not ready (it gets no link). */
export const podRpcUrl = (pod: NodePod, defaultPort: number): string | undefined => {
  if (!pod.ready || pod.ip === undefined) return undefined
  const host = pod.ip.includes(":") ? `[${pod.ip}]` : pod.ip
  return `ws://${host}:${pod.rpcPort ?? defaultPort}/rpc`
}

/**
 * The Kubernetes mode: control lists and watches the node pods matching PAWS_KUBERNETES_NODE_PODS
 * through the API (its own service account) and keeps one link to each ready pod, dialled like a
 * static node. A pod that turns not ready or is deleted has its link closed, so the registry marks
 * that node lost and the dispatcher stops sending it work. Nothing happens when the selector is unset.
 */
export const KubernetesNodes = Layer.effectDiscard(Effect.gen(function* () {
  const c = yield* Effect.orDie(kubernetesConfig)
  if (c.selector === "") return
  const url = c.api !== "" ? c.api : `https://${c.serviceHost}:${c.servicePort}`
  const target = { url, serviceAccountDir: c.serviceAccountDir }
  const headers = { authorization: `Bearer ${Redacted.value(c.token)}` }
  const scope = yield* Effect.scope
  const links = new Map<string, { readonly url: string; readonly fiber: Fiber.Fiber<never> }>()

  const stop = (name: string) =>
    Effect.suspend(() => {
      const link = links.get(name)
      if (link === undefined) return Effect.void
      links.delete(name)
      return Fiber.interrupt(link.fiber).pipe(
        Effect.andThen(Effect.logInfo("node pod link closed").pipe(Effect.annotateLogs({ pod: name }))),
      )
    })
  const apply = (pod: NodePod) =>
    Effect.gen(function* () {
      const want = podRpcUrl(pod, c.port)
      const have = links.get(pod.name)
      if (have?.url === want) return
      yield* stop(pod.name)
      if (want === undefined) return
      const fiber = yield* Effect.forkIn(dialNodeForever(want, headers), scope)
      links.set(pod.name, { url: want, fiber })
      yield* Effect.logInfo("node pod dialled").pipe(Effect.annotateLogs({ pod: pod.name, url: want }))
    })
  const onChange = (change: PodChange) => {
    switch (change._tag) {
      case "Upserted":
        return apply(change.pod)
      case "Deleted":
        return stop(change.name)
      case "Listed": {
        const names = new Set(change.pods.map((p) => p.name))
        const gone = [...links.keys()].filter((n) => !names.has(n))
        return Effect.andThen(Effect.forEach(gone, stop), Effect.forEach(change.pods, apply, { discard: true }))
      }
    }
  }
  yield* Effect.addFinalizer(() => Effect.forEach([...links.keys()], stop, { discard: true }))

  let delay = 500
  const once = Effect.gen(function* () {
    const namespace = c.namespace !== "" ? c.namespace : yield* podNamespace(c.serviceAccountDir)
    yield* watchPods(
      target,
      namespace,
      c.selector,
      (change) => Effect.andThen(Effect.sync(() => (delay = 500)), onChange(change)),
    )
  }).pipe(
    Effect.catchCause((cause) =>
      Effect.logWarning("Kubernetes pod watch failed").pipe(
        Effect.annotateLogs({ api: url, cause: Cause.pretty(cause).split("\n")[0] }),
      )
    ),
    Effect.andThen(Effect.suspend(() => {
      const wait = delay
      delay = Math.min(delay * 2, 30_000)
      return Effect.sleep(wait)
    })),
  )
  yield* Effect.forkScoped(Effect.forever(once))
})).pipe(Layer.provide(NodeSocket.layerWebSocketConstructor))
