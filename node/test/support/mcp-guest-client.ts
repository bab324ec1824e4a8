/**
 * Runs in the guest (bundled into one file by the test): the MCP SDK's own client over Streamable
 * HTTP to the gateway URL in argv[2], trusting the session's CA through NODE_EXTRA_CA_CERTS.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"

const client = new Client({ name: "guest-sdk", version: "1" })
await client.connect(new StreamableHTTPClientTransport(new URL(process.argv[2]!)))
const tools = await client.listTools()
console.log(`sdk-list=${JSON.stringify(tools.tools.map((t) => t.name))}`)
const called = await client.callTool({ name: "secret_hash" })
console.log(`sdk-call=${JSON.stringify(called.content)}`)
const refused = await client.callTool({ name: "forbidden" }).then(() => "ran", (e: Error) => e.message)
console.log(`sdk-refused=${JSON.stringify(refused)}`)
await client.close()
