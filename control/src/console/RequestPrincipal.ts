import { type Principal, Unauthorized } from "@paws/core"
import { ConsoleConfig } from "./ConsoleConfig.ts"
import { readConsoleCookie } from "./ConsoleCookie.ts"
import { Effect } from "effect"
import { HttpServerRequest } from "effect/http"
import { ApiKeys } from "../ApiKeys.ts"
import { ConsoleSessions } from "./ConsoleSessions.ts"

/**
 * Who makes a request outside the HTTP API (the shell's WebSocket): `Authorization: Bearer`, else
 * the console cookie. A browser cannot add a CSRF header to a WebSocket, so a cookie is accepted
 * only when the page that opened it is control's own origin (SameSite=Strict already keeps other
 * sites' requests from carrying it).
 */
export const requestPrincipal = Effect.gen(function* () {
  const request = yield* HttpServerRequest.HttpServerRequest
  const keys = yield* ApiKeys
  const header = request.headers["authorization"] ?? ""
  const cookie = readConsoleCookie(yield* ConsoleConfig, request) ?? ""
  if (header !== "" || cookie === "") return yield* keys.authenticate(header.replace(/^Bearer /, ""))
  const origin = request.headers["origin"]
  if (origin !== undefined && hostOf(origin) !== request.headers["host"]) {
    return yield* new Unauthorized({ message: `the console cookie is not accepted from origin ${origin}` })
  }
  const consoles = yield* ConsoleSessions
  return (yield* consoles.resolve(cookie)).principal satisfies Principal
})

const hostOf = (origin: string) => {
  try {
    return new URL(origin).host
  } catch {
    return undefined
  }
}
