import { Config, Data, Effect, Layer, Option, Redacted } from "effect"
import { type NodeSettings, nodeSettings, proxyUpstreamConfig } from "./NodeConfig.ts"

/** A setting `paws node` will not start with. */
export class NodeStartRefused extends Data.TaggedError("NodeStartRefused")<{ readonly message: string }> {}

const isLoopback = (host: string): boolean => {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase()
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h)
}

/** Why the node must not start with this token (unset, or empty as the environment gives it), or undefined. */
export const startRefusal = (token: Option.Option<Redacted.Redacted<string>>): string | undefined =>
  Option.isNone(token) || Redacted.value(token.value).trim() === ""
    ? "PAWS_NODE_TOKEN is empty or unset: an empty token would let anyone drive this node's RPC. Set it to the node " +
      "token from `paws nodes token create` (call-home) or to the PAWS_NODES_TOKEN control sends (static mode)"
    : undefined

/** What is allowed but unsafe about `settings`, one message each. */
export const startWarnings = (
  settings: Pick<NodeSettings, "controlUrl" | "proxyUpstream">,
): ReadonlyArray<string> => {
  const warnings: Array<string> = []
  if (Option.isSome(settings.controlUrl)) {
    const url = URL.parse(settings.controlUrl.value)
    if (url !== null && url.protocol !== "https:" && !isLoopback(url.hostname)) {
      warnings.push(
        `PAWS_CONTROL_URL ${url.origin} is not https: the node token and every session's credentials cross the ` +
          "network in clear text (ws://). Use an https:// control URL (wss://) off this machine",
      )
    }
  }
  if (Option.isSome(settings.proxyUpstream)) {
    const u = settings.proxyUpstream.value
    const overrides = [
      ...(u.caBundlePem === undefined ? [] : ["caBundlePem (upstream TLS trusts this bundle, not the system store)"]),
      ...(u.resolve === undefined
        ? []
        : [`resolve (names pinned to addresses: ${Object.keys(u.resolve).join(", ") || "none"})`]),
      ...(u.allowPrivateUpstreams === true
        ? ["allowPrivateUpstreams (guests may reach loopback, private and metadata addresses)"]
        : []),
    ]
    warnings.push(
      "PAWS_NODE_PROXY_UPSTREAM is set: TEST-ONLY overrides for every proxy on this node; never use it in " +
        `production. Overrides: ${overrides.join("; ") || "none"}`,
    )
  }
  return warnings
}

/**
 * Checks `paws node`'s settings before anything else starts (reconcile, VMs, links): refuses an
 * empty PAWS_NODE_TOKEN, and warns loudly about clear-text call-home off loopback and about
 * test-only proxy upstream overrides.
 */
export const NodeStartChecks = Layer.effectDiscard(Effect.gen(function* () {
  // Read on their own (not NodeSettings, which fails on an empty token with a bare "Expected string").
  const settings = yield* Config.all({
    token: nodeSettings.token.config.pipe(Config.map(Option.fromUndefinedOr)),
    controlUrl: nodeSettings.controlUrl.config,
    proxyUpstream: proxyUpstreamConfig,
  })
  // Warnings first, so a refused start still shows every problem at once.
  for (const warning of startWarnings(settings)) yield* Effect.logWarning(warning)
  const refusal = startRefusal(settings.token)
  if (refusal !== undefined) return yield* new NodeStartRefused({ message: refusal })
}))
