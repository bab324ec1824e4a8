import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { scoped } from "./ApiScoped.ts"
import { McpServerExists, McpServerNotFound, McpServerRequest, McpServerView } from "./Mcp.ts"
import { McpServerName } from "./McpGrant.ts"

/** MCP servers: tool servers that sessions reach through their proxy at `https://mcp.paws.internal/{name}`. */
export class McpServersApi extends HttpApiGroup.make("mcpServers")
  .add(
    HttpApiEndpoint.post("create", "/", {
      payload: McpServerRequest,
      success: McpServerView.pipe(HttpApiSchema.status(201)),
      error: McpServerExists,
    }).pipe(scoped(
      "admin",
      "Register an MCP server",
      '`transport: "stdio"`: the node runs `command` with `args` and `env`, one instance per session that ' +
        'uses it, killed with the session. `transport: "http"`: the node connects to the Streamable HTTP server ' +
        "at `url`, sending `headers`. Values of `env` and `headers` go to the vault and are never returned. " +
        "Sessions list the servers they may use in `mcp`; the guest reaches each as a Streamable HTTP MCP " +
        "endpoint at `https://mcp.paws.internal/{name}`. `auditArguments: true` records tool-call arguments " +
        "(with this server's secret values redacted) in the session's audit events. A name in use is a 409.",
    )),
    HttpApiEndpoint.get("list", "/", { success: Schema.Array(McpServerView) })
      .pipe(scoped("read", "List MCP servers", "Registered MCP servers (names of their secrets, never values).")),
    HttpApiEndpoint.delete("delete", "/:name", {
      params: { name: McpServerName },
      success: HttpApiSchema.NoContent,
      error: McpServerNotFound,
    }).pipe(scoped(
      "admin",
      "Remove an MCP server",
      "Remove the server and its secrets. Sessions already running keep the instance they have; queued " +
        "sessions that name it fail at dispatch.",
    )),
  )
  .prefix("/v1/mcp-servers")
  .annotateMerge(OpenApi.annotations({ description: "MCP servers: tool servers reached through the MCP gateway." })) {}
