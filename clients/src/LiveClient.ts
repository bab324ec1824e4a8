import { newWebSocketRpcSession, type RpcStub } from "capnweb"
import { type LiveGateApi, type LiveSessionsApi, liveUrl } from "@paws/core/LiveApi"

export interface LiveConnection {
  /** The session capability: createSession, getSession, cancelSession, subscribe. */
  readonly sessions: RpcStub<LiveSessionsApi>
  /** Releases the capability and closes the WebSocket. */
  readonly close: () => void
}

/**
 * The live API for TypeScript programs: a Cap'n Web capability over one WebSocket to
 * `/v1/rpc`. The API key is traded in-band for the session capability, whose methods are
 * checked against the key's scopes like the REST API.
 */
export const connectLive = async (baseUrl: string, apiKey: string): Promise<LiveConnection> => {
  const gate = newWebSocketRpcSession<LiveGateApi>(liveUrl(baseUrl))
  try {
    const sessions = await gate.authenticate(apiKey) as unknown as RpcStub<LiveSessionsApi>
    return {
      sessions,
      close: () => {
        sessions[Symbol.dispose]()
        gate[Symbol.dispose]()
      },
    }
  } catch (error) {
    gate[Symbol.dispose]()
    throw error
  }
}
