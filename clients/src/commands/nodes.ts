import { Console, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import type { NodeId, NodeInfo, NodeToken } from "@paws/core"
import { ApiClient } from "../ApiClient.ts"
import { withApi } from "./shared.ts"

/** A lost node shows when it was last heard from instead of capacity it no longer offers. */
export const formatNodeRow = (n: NodeInfo): string =>
  [
    n.id.padEnd(16),
    n.status.padEnd(8),
    `${n.capacity.running}/${n.capacity.maxConcurrent} running`.padEnd(14),
    n.status === "lost" ? `last seen ${n.lastSeenAt ?? "never"}` : `${n.capacity.available} free`,
    ...(Object.keys(n.labels).length === 0
      ? []
      : [Object.entries(n.labels).map(([k, v]) => (v === "" ? k : `${k}=${v}`)).join(",")]),
  ].join("  ") + (n.capacity.basis === undefined ? "" : `\n${"".padEnd(18)}capacity ${n.capacity.basis}`)

const json = Flag.Boolean("json").pipe(Flag.withDescription("print JSON"), Flag.withDefault(false))

const listNodes = (input: { readonly json: boolean }) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const list = yield* api.nodes.list()
    if (input.json) return yield* Console.log(JSON.stringify(list, null, 2))
    if (list.length === 0) return yield* Console.log("no nodes (start one with `paws node` or `paws up`)")
    for (const n of list) yield* Console.log(formatNodeRow(n))
  }))

const list = Command.make("list", { json }, listNodes).pipe(Command.withDescription("List nodes and their capacity"))

const tokenCreate = Command.make("create", {
  name: Flag.String("name").pipe(Flag.withDescription("which node the token is for")),
  nodeId: Flag.String("node-id").pipe(
    Flag.withDescription("bind the token to this PAWS_NODE_ID (default: the first node that connects with it)"),
    Flag.optional,
  ),
  maxConcurrent: Flag.Int("max-concurrent").pipe(
    Flag.withDescription("most sessions control runs on the node at once (default PAWS_NODE_MAX_CONCURRENT)"),
    Flag.optional,
  ),
}, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const created = yield* api.nodeTokens.create({
      payload: {
        name: input.name,
        ...(Option.isSome(input.nodeId) ? { nodeId: input.nodeId.value as NodeId } : {}),
        ...(Option.isSome(input.maxConcurrent) ? { maxConcurrent: input.maxConcurrent.value } : {}),
      },
    })
    yield* Console.error(
      `created node token ${created.id}; it is shown only now. Start a node with it:\n` +
        `  sudo PAWS_CONTROL_URL=<this control URL> PAWS_NODE_TOKEN=<token> paws node`,
    )
    yield* Console.log(created.token)
  }))).pipe(Command.withDescription("Create a node token (printed once) for PAWS_NODE_TOKEN"))

const tokenList = Command.make("list", { json }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const tokens: ReadonlyArray<NodeToken> = yield* api.nodeTokens.list()
    if (input.json) return yield* Console.log(JSON.stringify(tokens, null, 2))
    for (const t of tokens) {
      yield* Console.log(
        [t.id, t.name.padEnd(24), t.revokedAt === null ? "active " : "revoked", t.lastUsedAt ?? "never used"].join(
          "  ",
        ),
      )
    }
  }))).pipe(Command.withDescription("List node tokens (never their secrets)"))

const tokenRevoke = Command.make(
  "revoke",
  { id: Argument.String("id").pipe(Argument.withDescription("node token id")) },
  (input) =>
    withApi(Effect.gen(function* () {
      const api = yield* ApiClient
      const t = yield* api.nodeTokens.revoke({ params: { id: input.id } })
      yield* Console.log(`${t.id} revoked; nodes using it are disconnected`)
    })),
).pipe(Command.withDescription("Revoke a node token and disconnect the nodes using it"))

const nodeId = Argument.String("id").pipe(Argument.withDescription("node id (see `paws nodes`)"))

const drain = Command.make("drain", { id: nodeId }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const n = yield* api.nodes.drain({ params: { id: input.id as NodeId } })
    yield* Console.log(`${n.id} draining: it finishes its ${n.capacity.running} running and takes no new sessions`)
    yield* Console.log(`  undo with: paws nodes undrain ${n.id}`)
  }))).pipe(Command.withDescription("Stop placing sessions on a node; it finishes the ones it runs (admin)"))

const undrain = Command.make("undrain", { id: nodeId }, (input) =>
  withApi(Effect.gen(function* () {
    const api = yield* ApiClient
    const n = yield* api.nodes.undrain({ params: { id: input.id as NodeId } })
    yield* Console.log(`${n.id} ${n.status}: it takes new sessions again`)
  }))).pipe(Command.withDescription("Let a drained node take new sessions again (admin)"))

const token = Command.make("token").pipe(
  Command.withDescription("Manage node tokens (admin)"),
  Command.withSubcommands([tokenCreate, tokenList, tokenRevoke]),
)

/** `paws nodes` lists (as `paws nodes list` does); `paws nodes token …` manages node tokens. */
export const nodes = Command.make("nodes", { json }, listNodes).pipe(
  Command.withDescription("List nodes and their capacity; drain them; manage node tokens"),
  Command.withSubcommands([list, drain, undrain, token]),
)
