import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { storableName } from "./ApiKeys.ts"
import { scoped } from "./ApiScoped.ts"
import { NodeId } from "./Ids.ts"

/** The most sessions control ever runs at once on one node, whatever the node reports. */
export const nodeMaxConcurrentLimit = 1024
const MaxConcurrent = Schema.Int.pipe(
  Schema.check(Schema.isBetween({ minimum: 1, maximum: nodeMaxConcurrentLimit })),
)

export const NodeTokenId = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[a-z0-9]{12}$/, { message: "must be a 12-character node token id" })),
).annotate({ identifier: "NodeTokenId" })

/** A node token as listed: never the secret, which is shown once at creation and stored only hashed. */
export const NodeToken = Schema.Struct({
  id: NodeTokenId,
  name: Schema.String,
  /** The only node id this token may call home as (set at creation, or by its first connection). */
  nodeId: Schema.NullOr(Schema.String),
  /** Control's cap on the node's concurrent sessions; null: PAWS_NODE_MAX_CONCURRENT. */
  maxConcurrent: Schema.NullOr(Schema.Int),
  createdAt: Schema.String,
  lastUsedAt: Schema.NullOr(Schema.String),
  revokedAt: Schema.NullOr(Schema.String),
}).annotate({ identifier: "NodeToken" })
export type NodeToken = typeof NodeToken.Type

export const CreateNodeToken = Schema.Struct({
  name: Schema.String.pipe(Schema.check(Schema.isBetweenLength(1, 128), storableName)),
  /** Bind the token to this node id (PAWS_NODE_ID); unset: bound to the id of the first node that connects. */
  nodeId: Schema.optionalKey(NodeId),
  /** Never dispatch more than this many concurrent sessions to the node, whatever capacity it reports. */
  maxConcurrent: Schema.optionalKey(MaxConcurrent),
}).annotate({ identifier: "CreateNodeToken" })
export type CreateNodeToken = typeof CreateNodeToken.Type

export const CreatedNodeToken = Schema.Struct({
  id: NodeTokenId,
  name: Schema.String,
  nodeId: Schema.NullOr(Schema.String),
  maxConcurrent: Schema.NullOr(Schema.Int),
  /** Give it to the node as `PAWS_NODE_TOKEN`; returned only by this response. */
  token: Schema.String,
}).annotate({ identifier: "CreatedNodeToken" })
export type CreatedNodeToken = typeof CreatedNodeToken.Type

export class NodeTokenNotFound extends Schema.TaggedError<NodeTokenNotFound>()("NodeTokenNotFound", {
  tokenId: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 404 }) {}

/** Tokens that let a node call home (`GET /v1/nodes/connect`, a WebSocket outside this document). */
export class NodeTokensApi extends HttpApiGroup.make("nodeTokens")
  .add(
    HttpApiEndpoint.post("create", "/", {
      payload: CreateNodeToken,
      success: CreatedNodeToken.pipe(HttpApiSchema.status(201)),
    }).pipe(scoped(
      "admin",
      "Create a node token",
      "A node sends it as `Authorization: Bearer …` when it calls home. The token is in this response only; " +
        "it is stored hashed. It is bound to one node id: `nodeId`, or else the id of the first node that " +
        "connects with it; a node claiming any other id is refused (403). `maxConcurrent` caps the sessions " +
        "control runs on that node at once, whatever capacity the node reports (default PAWS_NODE_MAX_CONCURRENT).",
    )),
    HttpApiEndpoint.get("list", "/", { success: Schema.Array(NodeToken) })
      .pipe(scoped("admin", "List node tokens", "List node tokens (never their secrets).")),
    HttpApiEndpoint.delete("revoke", "/:id", {
      params: { id: NodeTokenId },
      success: NodeToken,
      error: NodeTokenNotFound,
    }).pipe(scoped(
      "admin",
      "Revoke a node token",
      "Revoke a node token: nodes using it are refused from then on and their open connections are closed.",
    )),
  )
  .prefix("/v1/nodes/tokens")
  .annotateMerge(OpenApi.annotations({ description: "Node tokens: how nodes authenticate to the control plane." })) {}
