import { randomInt } from "node:crypto"
import { chownSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { McpDispatchServer } from "@paws/core"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { sessionEnvVar } from "../network/Naming.ts"

/** uids for stdio MCP servers: beside the proxies' range (ProxySandbox), same reasoning, a fresh one each. */
const serverUidBase = 0x71000000
const serverUidSpan = 0x01000000

/**
 * The real MCP server behind one gateway path, as an SDK client: connected at the first request
 * (a stdio server is spawned then), reconnected at the next request after it exited or failed.
 */
export interface McpUpstream {
  readonly client: () => Promise<Client>
  /** Why the last connection ended, if it did (crash, refused start): for the guest's error message. */
  readonly lastFailure: () => string | undefined
  readonly close: () => Promise<void>
}

/**
 * A stdio server runs as its own unprivileged uid when the node is root (setpriv: no groups, no
 * capabilities, no_new_privs), with a private HOME removed at the end, labelled with the session
 * id so the node's reconciler kills it if the node died without closing the session. Its env is
 * the registration's (secret values, host side only) over a minimal default environment.
 */
const stdioTransport = (server: McpDispatchServer, sessionId: string, home: string, uid: number | undefined) => {
  const command = server.command ?? ""
  const args = [...(server.args ?? [])]
  const env = { ...server.env, HOME: home, [sessionEnvVar]: sessionId }
  if (uid === undefined) return new StdioClientTransport({ command, args, env, cwd: home, stderr: "ignore" })
  return new StdioClientTransport({
    command: "setpriv",
    args: [
      `--reuid=${uid}`,
      `--regid=${uid}`,
      "--clear-groups",
      "--inh-caps=-all",
      "--ambient-caps=-all",
      "--bounding-set=-all",
      "--no-new-privs",
      "--",
      command,
      ...args,
    ],
    env,
    cwd: home,
    stderr: "ignore",
  })
}

export const makeMcpUpstream = (server: McpDispatchServer, sessionId: string): McpUpstream => {
  let current: Promise<Client> | undefined
  let active: Client | undefined
  let failure: string | undefined
  let closed = false
  const root = process.getuid?.() === 0
  const uid = root ? serverUidBase + randomInt(1, serverUidSpan) : undefined
  let home: string | undefined
  let remote: StreamableHTTPClientTransport | undefined

  const connect = async (): Promise<Client> => {
    if (closed) throw new Error("the session is ending")
    const client = new Client({ name: "paws-mcp-gateway", version: "1" })
    let transport
    if (server.transport === "stdio") {
      home ??= mkdtempSync(join(tmpdir(), "paws-mcp-home-"))
      if (uid !== undefined) chownSync(home, uid, uid)
      transport = stdioTransport(server, sessionId, home, uid)
    } else {
      transport = remote = new StreamableHTTPClientTransport(new URL(server.url ?? ""), {
        requestInit: { headers: { ...server.headers } },
      })
    }
    client.onclose = () => {
      if (active !== client) return // an earlier instance, already replaced
      failure ??= server.transport === "stdio" ? "the server process exited" : "the connection to the server closed"
      current = undefined
      active = undefined
    }
    active = client
    try {
      await client.connect(transport)
    } catch (e) {
      failure = `the server could not be started: ${(e as Error).message}`
      current = undefined
      await client.close().catch(() => {})
      throw e
    }
    failure = undefined
    active = client
    return client
  }

  return {
    client: () => {
      current ??= connect()
      return current
    },
    lastFailure: () => failure,
    close: async () => {
      closed = true
      const c = current
      current = undefined
      // A remote server is told the session ended (DELETE of its MCP session), a stdio one is stopped.
      if (remote !== undefined) await remote.terminateSession().catch(() => {})
      if (c !== undefined) await c.then((client) => client.close()).catch(() => {})
      if (home !== undefined) rmSync(home, { recursive: true, force: true })
    },
  }
}
