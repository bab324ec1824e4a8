import { newWebSocketRpcSession, type RpcStub } from "capnweb"
import type { LiveGate, LiveSessions } from "../../control/src/LiveApi.ts"

export interface LiveConnection {
  /** The session capability: createSession, getSession, cancelSession, subscribe. */
  readonly sessions: RpcStub<LiveSessions>
  /** Releases the capability and closes the WebSocket. */
  readonly close: () => void
}

/**
 * The live API for TypeScript programs: a Cap'n Web capability over one WebSocket to
 * `/v1/rpc`. The API key is traded in-band for the session capability, whose methods are
 * checked against the key's scopes like the REST API.
 */
export const connectLive = async (baseUrl: string, apiKey: string): Promise<LiveConnection> => {
  const url = new URL("/v1/rpc", baseUrl)
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:"
  const gate = newWebSocketRpcSession<LiveGate>(url.toString())
  try {
    const sessions = await gate.authenticate(apiKey) as unknown as RpcStub<LiveSessions>
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
