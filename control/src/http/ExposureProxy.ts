import { exposurePathPrefix, isTerminal, pinMaxFailures, type SessionId } from "@paws/core"
import { type Cause, Deferred, Effect, Fiber, Queue, Stream } from "effect"
import { Cookies, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Socket } from "effect/socket"
import { randomUUID } from "node:crypto"
import { hostFormSignIn, ssoAccess } from "../console/ExposureSignIn.ts"
import { controlNamed, guestSetCookie } from "../exposure/GuestCookies.ts"
import { NodeRegistry } from "../NodeRegistry.ts"
import { type ExposureRow, PortExposures } from "../PortExposures.ts"
import { SessionStore } from "../SessionStore.ts"

const cookiePrefix = "paws_port_"
/** Exposure ids are lowercase (they are DNS labels in the host form). */
const exposureIdPattern = /^[a-z0-9]{24}$/
const cookieName = (id: string) => `${cookiePrefix}${id}`
const text = (status: number, body: string) => HttpServerResponse.text(`${body}\n`, { status })

const cookieOf = (header: string | undefined, name: string): string | undefined => {
  for (const part of (header ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=")
    if (k === name) return v.join("=")
  }
  return undefined
}

/** The form a browser sees at a PIN exposure before it has a cookie; it posts `pin` back to itself. */
const pinForm = (base: string, note: string) =>
  HttpServerResponse.text(
    `<!doctype html><meta charset="utf-8"><title>PIN</title><p>${note}</p>` +
      `<form method="post" action="${base}/"><input name="pin" inputmode="numeric" ` +
      `autocomplete="one-time-code" autofocus> <button>Open</button></form>\n`,
    { status: 401, contentType: "text/html; charset=utf-8" },
  )

const setCookie = (id: string, base: string, value: string) =>
  `${cookieName(id)}=${value}; Path=${base}/; HttpOnly; SameSite=Lax; Max-Age=43200`

/**
 * Control's own request headers are not the guest's business: credentials for control never go on.
 * (The guest's Set-Cookie goes back only through guestSetCookie: no cookie tossing at control.)
 */
const dropped = new Set(["authorization", "cookie", "host", "x-paws-csrf"])

/**
 * `/p/{id}/…`: an exposed guest port. Access first (token, PIN or public; a cookie once granted),
 * then the request is relayed through the session's node to `guest:port` and the answer
 * streamed back. An unknown id, or a session no longer running, is a 404.
 */
const serveExposure = (id: string, base: string, controlOrigin = "") =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const exposures = yield* PortExposures
    const store = yield* SessionStore
    const registry = yield* NodeRegistry
    const url = new URL(request.url, "http://control")
    const row = exposureIdPattern.test(id) ? yield* exposures.find(id) : undefined
    const session = row === undefined ? undefined : yield* store.get(row.session_id as SessionId)
    if (row === undefined || session === undefined || isTerminal(session.status)) {
      return text(404, "no such exposed port")
    }
    if (session.status !== "running" || session.node === null) return text(503, "the session is not running yet")

    const rest = url.pathname.slice(base.length) || "/"
    const cookie = cookieOf(request.headers["cookie"], cookieName(id))
    const hasGrant = cookie !== undefined && (yield* exposures.granted(id, cookie))
    // A successful token or PIN answers with a cookie and a redirect to the same path, minus the secret.
    const grantAndRedirect = (location: string) =>
      Effect.map(
        exposures.grant(id),
        (value) =>
          HttpServerResponse.empty({ status: 303, headers: { location, "set-cookie": setCookie(id, base, value) } }),
      )

    if (!hasGrant && row.access === "token") {
      const bearer = request.headers["authorization"]?.replace(/^Bearer /, "")
      const query = url.searchParams.get("token")
      if (bearer !== undefined && exposures.tokenMatches(row, bearer)) {
        // An API-style caller with the bearer on every request: relayed, no cookie needed.
      } else if (query !== null && exposures.tokenMatches(row, query)) {
        url.searchParams.delete("token")
        return yield* grantAndRedirect(`${base}${rest}${url.search}`)
      } else {
        return text(401, "this port needs its token: Authorization: Bearer <token>, or ?token=<token> once")
      }
    }
    if (!hasGrant && row.access === "pin") {
      if (request.method !== "POST") return pinForm(base, "This port is protected by a PIN.")
      const form = new URLSearchParams(yield* Effect.orElseSucceed(request.text, () => ""))
      const outcome = yield* exposures.tryPin(row, form.get("pin") ?? "")
      if (outcome === "locked") {
        return text(429, `too many wrong PINs (${pinMaxFailures}): this port is locked for a while`)
      }
      if (outcome === "wrong") return pinForm(base, "Wrong PIN.")
      return yield* grantAndRedirect(`${base}/`)
    }
    if (row.access === "sso" && base === "") {
      // The host form: a grant handed over once by control's /v1/auth/port-grant (never passed on to the guest).
      const handed = url.searchParams.get("paws_grant")
      url.searchParams.delete("paws_grant")
      const value = hasGrant || handed === null ? undefined : yield* exposures.exchange(id, handed)
      if (!hasGrant && value === undefined) return yield* hostFormSignIn(id, `${rest}${url.search}`)
      if (value !== undefined) {
        const location = `${rest}${url.search}`
        return HttpServerResponse.empty({
          status: 303,
          headers: { location, "set-cookie": setCookie(id, base, value) },
        })
      }
    }
    if (row.access === "sso" && base !== "") {
      const access = yield* ssoAccess(session, `${base}${rest}${url.search}`, controlOrigin)
      if (access._tag === "refused") return access.response
    }
    if ((request.headers["upgrade"] ?? "").toLowerCase() === "websocket") {
      return yield* relaySocket(row, session.node, rest + url.search, request, registry)
    }
    return yield* relay(row, session.node, rest + url.search, request, registry, base)
  }).pipe(Effect.catchCause(() => Effect.succeed(text(502, "the exposed port did not answer"))))

const relay = (
  row: ExposureRow,
  node: string,
  path: string,
  request: HttpServerRequest.HttpServerRequest,
  registry: NodeRegistry["Service"],
  base: string,
) =>
  Effect.gen(function* () {
    const entry = yield* registry.get(node)
    if (entry === undefined) return text(503, "the session's node is not connected")
    const headers = Object.entries(request.headers).filter(([k]) => !dropped.has(k.toLowerCase()))
      .map(([k, v]) => [k, String(v)] as const)
    // The app's own cookies go on; the grant cookies of paws exposures never reach a guest.
    const cookies = appCookies(request)
    if (cookies.length > 0) headers.push(["cookie", cookies.join("; ")])
    const body = request.method === "GET" || request.method === "HEAD"
      ? new Uint8Array()
      : new Uint8Array(yield* request.arrayBuffer)
    const chunks = entry.client.ForwardToPort({
      sessionId: row.session_id as SessionId,
      port: row.port,
      method: request.method,
      path,
      headers: [...headers, ["host", `localhost:${row.port}`]],
      body,
    })
    // The head comes first; the body follows through a small queue (backpressure towards the node),
    // and the relay fiber is interrupted when the client goes away.
    const head = yield* Deferred.make<
      { readonly status: number; readonly headers: ReadonlyArray<readonly [string, string]> }
    >()
    const out = yield* Queue.bounded<Uint8Array, Cause.Done>(16)
    const fiber = yield* chunks.pipe(
      Stream.runForEach((c) => c._tag === "head" ? Deferred.succeed(head, c) : Effect.asVoid(Queue.offer(out, c.data))),
      Effect.catchCause((cause) =>
        Effect.logWarning("exposed port relay ended").pipe(Effect.annotateLogs({ exposure: row.id, cause }))
      ),
      Effect.ensuring(Effect.andThen(
        Deferred.succeed(head, { status: 502, headers: [["content-type", "text/plain"]] }),
        Queue.end(out),
      )),
      Effect.forkDetach,
    )
    const h = yield* Deferred.await(head)
    const responseHeaders: Record<string, string> = {}
    const setCookies: Array<string> = []
    for (const [k, v] of h.headers) {
      const name = k.toLowerCase()
      if (name === "set-cookie") {
        const kept = guestSetCookie(v, base)
        if (kept !== undefined) setCookies.push(kept)
        continue
      }
      if (name === "content-length") continue
      responseHeaders[name] = responseHeaders[name] === undefined ? v : `${responseHeaders[name]}, ${v}`
    }
    return HttpServerResponse.stream(Stream.fromQueue(out).pipe(Stream.ensuring(Fiber.interrupt(fiber))), {
      status: h.status,
      headers: responseHeaders,
      cookies: Cookies.fromSetCookie(setCookies),
      ...(responseHeaders["content-type"] === undefined ? {} : { contentType: responseHeaders["content-type"] }),
    })
  })

/**
 * The request's cookies that belong to the app: paws's own (grants, the console sign-in
 * `paws_session`, a pending OIDC login) never reach a guest.
 */
const appCookies = (request: HttpServerRequest.HttpServerRequest) =>
  (request.headers["cookie"] ?? "").split(";").map((c) => c.trim()).filter((c) => c !== "" && !controlNamed.test(c))

/**
 * A WebSocket through the exposure: control accepts the browser's, the node opens one to the
 * guest (OpenPortSocket), and messages are relayed both ways until either side closes.
 */
const relaySocket = (
  row: ExposureRow,
  node: string,
  path: string,
  request: HttpServerRequest.HttpServerRequest,
  registry: NodeRegistry["Service"],
) =>
  Effect.gen(function* () {
    const entry = yield* registry.get(node)
    if (entry === undefined) return text(503, "the session's node is not connected")
    const socket = yield* request.upgrade
    const socketId = randomUUID()
    const cookies = appCookies(request)
    yield* Effect.scoped(Effect.gen(function* () {
      const writer = yield* socket.writer
      const reader = yield* socket.reader
      const fromGuest = entry.client.OpenPortSocket({
        sessionId: row.session_id as SessionId,
        port: row.port,
        socketId,
        path,
        ...(cookies.length === 0 ? {} : { cookie: cookies.join("; ") }),
      }).pipe(
        Stream.runForEach((m) => writer.write(m.text ? Buffer.from(m.data).toString("utf8") : m.data)),
      )
      const toGuest = reader.pull.pipe(
        Effect.flatMap((messages) =>
          Effect.forEach(messages, (m) =>
            entry.client.SendPortSocket({
              socketId,
              message: typeof m === "string" ? { data: Buffer.from(m, "utf8"), text: true } : { data: m, text: false },
            }), { discard: true })
        ),
        Effect.forever,
      )
      yield* Effect.raceFirst(fromGuest, toGuest).pipe(Effect.ignore)
      yield* writer.write(new Socket.CloseEvent(1000)).pipe(Effect.ignore)
    }))
    return HttpServerResponse.empty()
  })

/**
 * `/p/{id}/…`, the path form, on the exposure listener (ExposureListener): never on control's own
 * origin. `controlOrigin` is where its browser signs in to the console (for `sso`).
 */
export const exposurePathRoutes = (controlOrigin: (request: HttpServerRequest.HttpServerRequest) => string) =>
  HttpRouter.add(
    "*",
    `${exposurePathPrefix}*`,
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const id = new URL(request.url, "http://control").pathname.slice(exposurePathPrefix.length).split("/")[0] ?? ""
      return serveExposure(id, `${exposurePathPrefix}${id}`, controlOrigin(request))
    }),
  )

/**
 * The host form, when PAWS_PUBLIC_DOMAIN is set: `{port}-{id}.{domain}` is the exposure's own
 * origin (its cookies, scripts and storage apart from control's and every other exposure's).
 * Requests for other hosts go on to control's routes.
 */
export const exposureHosts = (domain: string | undefined) =>
<E, R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
) =>
  Effect.gen(function* () {
    if (domain === undefined) return yield* app
    const request = yield* HttpServerRequest.HttpServerRequest
    const host = (request.headers["host"] ?? "").toLowerCase().replace(/:\d+$/, "")
    const m = host.endsWith(`.${domain}`) ? /^(\d{1,5})-([a-z0-9]{24})$/.exec(host.slice(0, -domain.length - 1)) : null
    if (m === null) return yield* app
    return yield* serveExposure(m[2]!, "")
  })
