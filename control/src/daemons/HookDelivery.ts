import { AuditLog } from "../audit/AuditLog.ts"
import { Webhooks } from "@octokit/webhooks"
import { inputMaxBytes, type Trigger } from "@paws/core"
import { Effect, Option } from "effect"
import { HttpIncomingMessage, type HttpServerRequest, HttpServerResponse } from "effect/http"
import { ByteSize } from "effect"
import { DaemonConfig } from "./DaemonConfig.ts"
import { DaemonInvoker } from "./DaemonInvoker.ts"
import { Daemons } from "./Daemons.ts"
import { DaemonStore, type StoredDaemon } from "./DaemonStore.ts"
import { eventName, githubMatches } from "./GithubFilters.ts"
import { checkWebhook, signatureHeader, timestampHeader } from "./WebhookSignature.ts"

/** The error tags of HooksApi (core/src/ApiHooks.ts), by status. */
const tags: Record<number, string> = {
  400: "InvalidRequest",
  401: "Unauthorized",
  404: "DaemonNotFound",
  409: "DaemonDisabled",
  413: "PayloadTooLarge",
}
const reply = (status: number, body: Record<string, unknown>) =>
  HttpServerResponse.jsonUnsafe(status >= 400 ? { _tag: tags[status] ?? "Error", ...body } : body, { status })

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * `POST /v1/hooks/{daemon}/{trigger}` (HooksApi, served raw: the signature covers the exact bytes): the public door of webhook and GitHub triggers (no API
 * key: the signature is the authentication). Everything is checked before anything runs: body
 * size, signature (HMAC-SHA256, constant-time), timestamp window, replay/delivery id; a refused
 * delivery creates no session. Signatures and secrets never reach the guest: it gets the body only.
 */
export const deliverHook = (
  params: { readonly daemon: string; readonly trigger: string },
  request: HttpServerRequest.HttpServerRequest,
) =>
  Effect.gen(function* () {
    const config = yield* DaemonConfig
    const store = yield* DaemonStore
    const daemons = yield* Daemons
    const invoker = yield* DaemonInvoker
    const audit = yield* AuditLog
    const tooLarge = reply(413, {
      message: `the body is larger than ${config.hookMaxBytes} bytes`,
      maxBytes: config.hookMaxBytes,
    })
    if (Number(request.headers["content-length"] ?? 0) > config.hookMaxBytes) return tooLarge
    const name = params.daemon
    const triggerName = params.trigger
    const daemon = yield* store.get(name)
    const trigger = daemon?.view.triggers.find((t) => t.name === triggerName)
    if (daemon === undefined || trigger === undefined || (trigger.kind !== "webhook" && trigger.kind !== "github")) {
      return reply(404, { daemon: name, message: `no webhook or github trigger ${triggerName} on a daemon ${name}` })
    }
    const body = yield* request.arrayBuffer.pipe(
      Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(config.hookMaxBytes)),
      Effect.map((b) => new Uint8Array(b)),
      Effect.option,
    )
    if (Option.isNone(body) || body.value.byteLength > config.hookMaxBytes) return tooLarge
    const secret = yield* daemons.triggerSecret(daemon, triggerName)
    if (secret === undefined) return reply(404, { daemon: name, message: `trigger ${triggerName} has no secret` })
    const refused = (reason: string) =>
      Effect.logWarning("webhook refused").pipe(
        Effect.annotateLogs({
          daemon: name,
          trigger: triggerName,
          reason,
          remote: Option.getOrUndefined(request.remoteAddress),
        }),
        // Signature failures are audited (who sent it is unknown: the remote address stands in).
        Effect.andThen(audit.record({
          actor: "system",
          action: "hook.refused",
          target: `${name}/${triggerName}`,
          result: "refused",
          daemon: name,
          detail: { reason, remote: Option.getOrUndefined(request.remoteAddress) ?? null },
        })),
        Effect.as(reply(401, { message: `delivery refused: ${reason}` })),
      )
    const run = trigger.kind === "webhook"
      ? webhook(daemon, trigger, body.value, request.headers, secret, config.hookReplayWindowSeconds, refused)
      : github(daemon, trigger, body.value, request.headers, secret, config.hookReplayWindowSeconds, refused)
    return yield* run.pipe(
      Effect.provideService(DaemonStore, store),
      Effect.provideService(DaemonInvoker, invoker),
    )
  })

type Headers = Readonly<Record<string, string | undefined>>
type Refuse = (reason: string) => Effect.Effect<HttpServerResponse.HttpServerResponse>

const invokeWith = (daemon: StoredDaemon, trigger: Trigger, event: Record<string, unknown>) =>
  Effect.gen(function* () {
    if (!daemon.view.enabled) {
      return reply(409, { daemon: daemon.view.name, message: `daemon ${daemon.view.name} is disabled` })
    }
    const envelope = { kind: trigger.kind, trigger: trigger.name, receivedAt: new Date().toISOString(), ...event }
    if (Buffer.byteLength(JSON.stringify(envelope)) > inputMaxBytes) {
      return reply(413, { message: `the event is larger than ${inputMaxBytes} bytes`, maxBytes: inputMaxBytes })
    }
    const invoker = yield* DaemonInvoker
    const invocation = yield* invoker.invoke(daemon, { kind: trigger.kind, name: trigger.name }, envelope).pipe(
      Effect.map((i) => reply(202, i)),
      Effect.catchTag("InvalidRequest", (e) => Effect.succeed(reply(400, { message: e.message, issues: e.issues }))),
    )
    return invocation
  })

const webhook = (
  daemon: StoredDaemon,
  trigger: Trigger,
  body: Uint8Array,
  headers: Headers,
  secret: string,
  windowSeconds: number,
  refused: Refuse,
) =>
  Effect.gen(function* () {
    const signature = headers[signatureHeader]
    const check = checkWebhook({
      secret,
      body,
      signature,
      timestamp: headers[timestampHeader],
      windowSeconds,
      nowMs: Date.now(),
    })
    if (!check.ok) return yield* refused(check.reason)
    const store = yield* DaemonStore
    yield* store.pruneDeliveries(2 * windowSeconds)
    if (!(yield* store.firstDelivery(daemon.view.name, trigger.name, signature!))) {
      return yield* refused("this signature was seen before (replayed delivery)")
    }
    const text = new TextDecoder().decode(body)
    const json = parseJson(text)
    return yield* invokeWith(daemon, trigger, json === undefined ? { text } : { body: json })
  })

const github = (
  daemon: StoredDaemon,
  trigger: Extract<Trigger, { kind: "webhook" | "github" }>,
  body: Uint8Array,
  headers: Headers,
  secret: string,
  windowSeconds: number,
  refused: Refuse,
) =>
  Effect.gen(function* () {
    const signature = headers["x-hub-signature-256"]
    const event = headers["x-github-event"]
    const delivery = headers["x-github-delivery"]
    const text = new TextDecoder().decode(body)
    if (signature === undefined) return yield* refused("missing X-Hub-Signature-256")
    const valid = yield* Effect.promise(() => new Webhooks({ secret }).verify(text, signature).catch(() => false))
    if (!valid) return yield* refused("X-Hub-Signature-256 does not match")
    if (event === undefined || delivery === undefined || !/^[A-Za-z0-9-]{1,100}$/.test(delivery)) {
      return reply(400, {
        message: "send X-GitHub-Event and X-GitHub-Delivery as GitHub does",
        issues: [{
          path: "headers",
          message: "X-GitHub-Event and X-GitHub-Delivery (1-100 of A-Z a-z 0-9 -) are required",
        }],
      })
    }
    const payload = parseJson(text)
    if (typeof payload !== "object" || payload === null) {
      return reply(400, {
        message: "the body must be JSON",
        issues: [{ path: "body", message: "must be a JSON object" }],
      })
    }
    if (event === "ping") return reply(200, { pong: true, message: "pong" })
    const store = yield* DaemonStore
    yield* store.pruneDeliveries(2 * windowSeconds)
    if (!(yield* store.firstDelivery(daemon.view.name, trigger.name, `github:${delivery}`))) {
      return reply(200, { duplicate: true, message: `delivery ${delivery} was received before` })
    }
    const filters = trigger.kind === "github" ? trigger.filters : []
    if (!githubMatches(filters, event, payload)) {
      return reply(200, { ignored: true, message: `${eventName(event, payload)} matches no filter` })
    }
    return yield* invokeWith(daemon, trigger, {
      event,
      action: (payload as { action?: unknown }).action ?? null,
      delivery,
      payload,
    })
  })
