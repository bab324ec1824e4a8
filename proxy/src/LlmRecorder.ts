import type { IncomingMessage } from "node:http"
import type { LlmExchange } from "@paws/core/LlmExchange"
import { auditPath } from "./AuditLog.ts"
import { redactText } from "./SecretScanner.ts"
import type { SecretNeedles } from "./SecretScanner.ts"

/**
 * Which requests are LLM exchanges: Anthropic Messages (`…/v1/messages`) and OpenAI-compatible
 * chat (`…/chat/completions`) POSTs, on any allowlisted host, so gateways and self-hosted
 * compatible servers are recorded too. Token counting and other side calls are not.
 */
export const isLlmCall = (method: string | undefined, url: string | undefined): boolean => {
  if (method !== "POST") return false
  const path = (url ?? "").split("?")[0]!
  return path.endsWith("/v1/messages") || path.endsWith("/chat/completions")
}

/** A body kept up to `maxBytes` (what is cut is counted, never buffered). */
class CappedBody {
  private readonly chunks: Array<Buffer> = []
  private bytes = 0
  private readonly maxBytes: number
  truncated = false
  constructor(maxBytes: number) {
    this.maxBytes = maxBytes
  }
  push(chunk: Buffer): void {
    const room = this.maxBytes - this.bytes
    if (room <= 0) {
      this.truncated ||= chunk.length > 0
      return
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk
    this.truncated ||= kept.length < chunk.length
    this.chunks.push(Buffer.from(kept))
    this.bytes += kept.length
  }
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8")
  }
}

/**
 * One exchange being recorded: the request body as the guest sent it, the response body as the
 * guest received it (decoded, echoes already redacted; SSE kept as its raw event text). Headers
 * are never recorded, and every injected value is redacted from both bodies once more.
 */
export class LlmRecorder {
  private readonly request: CappedBody
  private readonly response: CappedBody
  private readonly started = new Date().toISOString()
  private unreadable: string | undefined
  private requestUnreadable: string | undefined
  private readonly req: IncomingMessage
  private readonly secrets: SecretNeedles
  constructor(req: IncomingMessage, maxBytes: number, secrets: SecretNeedles) {
    this.req = req
    this.secrets = secrets
    this.request = new CappedBody(maxBytes)
    this.response = new CappedBody(maxBytes)
    const encoding = req.headers["content-encoding"]
    if (encoding !== undefined && encoding !== "identity") {
      this.requestUnreadable = `[request body not recorded: content-encoding ${encoding}]`
    } else req.on("data", (c: Buffer) => this.request.push(c))
  }
  /** The response stream the guest reads; `encoding` is set when it is still compressed. */
  watchResponse(source: NodeJS.ReadableStream, encoding: string | undefined): void {
    if (encoding !== undefined && encoding !== "identity") {
      this.unreadable = `[response body not recorded: content-encoding ${encoding}]`
      return
    }
    source.on("data", (c: Buffer | string) => this.response.push(Buffer.isBuffer(c) ? c : Buffer.from(c)))
  }
  finish(host: string, status: number): LlmExchange {
    return {
      time: this.started,
      host,
      method: this.req.method ?? "",
      path: auditPath(this.req.url ?? ""),
      status,
      request: this.requestUnreadable ?? redactText(this.request.text(), this.secrets),
      response: this.unreadable ?? redactText(this.response.text(), this.secrets),
      truncated: this.request.truncated || this.response.truncated,
    }
  }
}
