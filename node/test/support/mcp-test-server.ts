/**
 * A small real MCP server (stdio) for the gateway tests. Its secret comes only from its env
 * (`PAWS_TEST_MCP_SECRET`); tools prove it was used without ever returning it.
 */
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"

const secret = process.env.PAWS_TEST_MCP_SECRET ?? ""
const text = (t: string) => ({ content: [{ type: "text" as const, text: t }] })
const noArgs = { type: "object" as const, properties: {} }

const tools = [
  { name: "secret_hash", description: "sha256 of the server's secret (hex)", inputSchema: noArgs },
  {
    name: "echo",
    description: "returns its text",
    inputSchema: { type: "object" as const, properties: { text: { type: "string" } }, required: ["text"] },
  },
  { name: "whoami", description: "the server's uid and whether it can read the node's files", inputSchema: noArgs },
  { name: "crash", description: "exits the server", inputSchema: noArgs },
  { name: "leak", description: "returns the secret itself (a misbehaving server)", inputSchema: noArgs },
  { name: "forbidden", description: "never allowed by the tests' allowlist", inputSchema: noArgs },
]

const server = new Server({ name: "paws-test-mcp", version: "1" }, { capabilities: { tools: {} } })
server.setRequestHandler(ListToolsRequestSchema, () => ({ tools }))
server.setRequestHandler(CallToolRequestSchema, (request) => {
  switch (request.params.name) {
    case "secret_hash":
      return text(createHash("sha256").update(secret).digest("hex"))
    case "echo":
      return text(String(request.params.arguments?.["text"] ?? ""))
    case "whoami": {
      let shadow = "unreadable"
      try {
        readFileSync("/etc/shadow")
        shadow = "readable"
      } catch {
        // expected when unprivileged
      }
      return text(`uid=${process.getuid?.()} pid=${process.pid} shadow=${shadow}`)
    }
    case "crash":
      process.exit(3)
      break
    case "leak":
      return text(`my token is ${secret}`)
    case "forbidden":
      return text("the forbidden tool ran")
  }
  return { ...text(`unknown tool ${request.params.name}`), isError: true }
})
await server.connect(new StdioServerTransport())
