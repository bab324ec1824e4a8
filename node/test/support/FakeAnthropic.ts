import type { IncomingMessage, ServerResponse } from "node:http"

/**
 * A fake Anthropic Messages API for the agent e2e test: the conversation turn (the request that
 * offers the Bash tool) first gets a streamed tool_use running `toolCommand` (or calling the first
 * MCP tool offered, if any), then — once the
 * tool_result comes back — a streamed final answer quoting it. Any other request (Claude Code's
 * side calls) gets a short text reply, streamed or not as asked.
 */
export const fakeAnthropic = (toolCommand: string) => (body: string, res: ServerResponse, req: IncomingMessage) => {
  if (req.method !== "POST" || !new URL(req.url ?? "/", "https://x").pathname.startsWith("/v1/messages")) {
    res.writeHead(404, { "content-type": "application/json" }).end(`{"type":"error"}`)
    return
  }
  const request = JSON.parse(body || "{}") as {
    model?: string
    stream?: boolean
    tools?: Array<{ name?: string }>
    messages?: Array<{ role: string; content: unknown }>
  }
  if (new URL(req.url ?? "/", "https://x").pathname.endsWith("/count_tokens")) {
    res.writeHead(200, { "content-type": "application/json" }).end(`{"input_tokens":10}`)
    return
  }
  const last = request.messages?.at(-1)
  const toolResult = Array.isArray(last?.content)
    ? (last.content as Array<{ type?: string; content?: unknown }>).find((c) => c.type === "tool_result")
    : undefined
  const offersBash = request.tools?.some((t) => t.name === "Bash") === true
  // An MCP tool (Claude Code names them mcp__<server>__<tool>) is asked for before Bash when offered.
  const mcpTool = request.tools?.find((t) => t.name?.startsWith("mcp__"))?.name
  const model = request.model ?? "claude-test"
  const resultText = (c: unknown): string =>
    typeof c === "string" ? c : Array.isArray(c) ? c.map((x) => (x as { text?: string }).text ?? "").join("") : ""
  const blocks: Array<Record<string, unknown>> = toolResult !== undefined
    ? [{ type: "text", text: `FINAL ANSWER: ${resultText(toolResult.content).trim()}` }]
    : mcpTool !== undefined
    ? [{ type: "tool_use", id: "toolu_paws_mcp", name: mcpTool, input: {} }]
    : offersBash
    ? [{ type: "tool_use", id: "toolu_paws_1", name: "Bash", input: { command: toolCommand, description: "check" } }]
    : [{ type: "text", text: "ok" }]
  const stopReason = blocks[0]!["type"] === "tool_use" ? "tool_use" : "end_turn"
  const usage = { input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 }
  const message = { id: `msg_${Date.now()}`, type: "message", role: "assistant", model }
  if (request.stream !== true) {
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ ...message, content: blocks, stop_reason: stopReason, stop_sequence: null, usage }))
    return
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
  const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  send("message_start", {
    type: "message_start",
    message: { ...message, content: [], stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 1 } },
  })
  blocks.forEach((b, index) => {
    if (b["type"] === "text") {
      send("content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } })
      send("content_block_delta", {
        type: "content_block_delta",
        index,
        delta: { type: "text_delta", text: b["text"] },
      })
    } else {
      send("content_block_start", {
        type: "content_block_start",
        index,
        content_block: { type: "tool_use", id: b["id"], name: b["name"], input: {} },
      })
      send("content_block_delta", {
        type: "content_block_delta",
        index,
        delta: { type: "input_json_delta", partial_json: JSON.stringify(b["input"]) },
      })
    }
    send("content_block_stop", { type: "content_block_stop", index })
  })
  send("message_delta", {
    type: "message_delta",
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage: { output_tokens: 5 },
  })
  send("message_stop", { type: "message_stop" })
  res.end()
}
