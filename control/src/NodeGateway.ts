import { nodeConnectPath, NodeId, nodeIdHeader } from "@paws/core"
import { Effect, Option, Schema } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { runNodeLink } from "./NodeLink.ts"
import { NodeRegistry } from "./NodeRegistry.ts"
import { NodeTokens } from "./NodeTokens.ts"

const tags: Record<number, string> = { 401: "Unauthorized", 403: "Forbidden", 409: "NodeIdInUse" }
const refuse = (status: number, message: string) =>
  HttpServerResponse.jsonUnsafe({ _tag: tags[status] ?? "InvalidRequest", message }, { status })

const isNodeId = Schema.is(NodeId)

/**
 * `GET /v1/nodes/connect`: where nodes call home. The node token and node id are checked
 * BEFORE the WebSocket upgrade (a wrong or missing token is a plain 401, never a socket);
 * then control is the RPC client of the node over the upgraded socket for as long as it
 * stays connected (see runNodeLink). Revoking the token closes the link. A token is bound to
 * one node id (403 for any other), and an id that is connected already is refused (409).
 */
export const NodeGateway = HttpRouter.add(
  "GET",
  nodeConnectPath,
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const tokens = yield* NodeTokens
    const registry = yield* NodeRegistry
    const header = request.headers["authorization"] ?? ""
    const tokenId = header.startsWith("Bearer ") ? yield* tokens.verify(header.slice("Bearer ".length)) : undefined
    if (tokenId === undefined) {
      yield* Effect.logWarning("node refused: missing or invalid node token").pipe(
        Effect.annotateLogs({ remote: Option.getOrUndefined(request.remoteAddress) }),
      )
      return refuse(401, "missing, invalid or revoked node token: send `Authorization: Bearer <node token>`")
    }
    const nodeId = request.headers[nodeIdHeader] ?? ""
    if (!isNodeId(nodeId)) return refuse(400, `send the node's id in ${nodeIdHeader} (1-63 chars of a-z 0-9 . _ -)`)
    // Checked before the claim: a refused connection must not bind an unbound token to a live node's id.
    if ((yield* registry.get(nodeId)) !== undefined) {
      yield* Effect.logWarning("node refused: its id is already connected").pipe(
        Effect.annotateLogs({ token: tokenId, node: nodeId }),
      )
      return refuse(
        409,
        `node ${nodeId} is already connected; a second connection with its id is refused until that one ends`,
      )
    }
    const claim = yield* tokens.claim(tokenId, nodeId)
    if (claim._tag === "BoundElsewhere") {
      yield* Effect.logWarning("node refused: token bound to another node id").pipe(
        Effect.annotateLogs({ token: tokenId, claimed: nodeId, boundTo: claim.nodeId }),
      )
      return refuse(
        403,
        `this node token is bound to node ${claim.nodeId}, not ${nodeId}: ` +
          "create a token for this node (POST /v1/nodes/tokens with its nodeId)",
      )
    }
    const socket = yield* Effect.orDie(request.upgrade)
    yield* runNodeLink(socket, {
      expectedId: nodeId,
      until: tokens.revoked(tokenId),
      maxConcurrent: claim.maxConcurrent,
    }).pipe(
      Effect.catchTag(
        "NodeLinkRefused",
        (e) => Effect.logWarning("node link refused").pipe(Effect.annotateLogs({ node: nodeId, reason: e.message })),
      ),
      Effect.annotateLogs({ token: tokenId }),
    )
    return HttpServerResponse.empty()
  }),
)
