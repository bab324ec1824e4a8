import { Api, Unauthorized } from "@paws/core"
import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { ApiKeys } from "../ApiKeys.ts"
import { AuditLog } from "../audit/AuditLog.ts"
import { ConsoleConfig } from "../console/ConsoleConfig.ts"
import { clearConsoleCookie, consoleCookie, setConsoleCookie } from "../console/ConsoleCookie.ts"
import { ConsoleSessions } from "../console/ConsoleSessions.ts"
import { OidcLogin } from "../oidc/OidcLogin.ts"

/** Console sign-in with an API key: the key is traded for the cookie, once; `me` and `logout` read the cookie. */
export const AuthHttp = HttpApiBuilder.group(
  Api,
  "auth",
  Effect.fn(function* (handlers) {
    const keys = yield* ApiKeys
    const consoles = yield* ConsoleSessions
    const config = yield* ConsoleConfig
    const audit = yield* AuditLog
    const oidc = yield* OidcLogin
    return handlers
      .handle("login", ({ payload }) =>
        Effect.gen(function* () {
          const principal = yield* keys.authenticate(payload.key.trim())
          const { cookie, session } = yield* consoles.create({
            via: "key",
            keyId: principal.keyId,
            scopes: principal.scopes,
            project: principal.project,
          })
          yield* setConsoleCookie(config, cookie)
          yield* audit.record({
            actor: session.identity.actor,
            action: "console.login",
            project: session.identity.project,
            target: "/v1/auth/login",
            result: "ok",
            detail: { via: "key" },
          })
          return session.identity
        }))
      .handle("me", () =>
        Effect.gen(function* () {
          const cookie = yield* consoleCookie
          if (cookie === undefined) {
            return yield* new Unauthorized({ message: "not signed in: POST /v1/auth/login with an API key" })
          }
          return (yield* consoles.resolve(cookie)).identity
        }))
      .handle("logout", () =>
        Effect.gen(function* () {
          const cookie = yield* consoleCookie
          if (cookie !== undefined) {
            const ended = yield* Effect.option(consoles.resolve(cookie))
            yield* consoles.end(cookie)
            if (ended._tag === "Some") {
              const { actor, email, via, project } = ended.value.identity
              yield* audit.record({
                actor,
                action: "console.logout",
                project,
                target: "/v1/auth/logout",
                result: "ok",
                detail: { via, ...(email === undefined ? {} : { email }) },
              })
            }
          }
          yield* clearConsoleCookie(config)
        }))
      .handle("oidc", () => Effect.succeed({ enabled: oidc.enabled }))
  }),
)
