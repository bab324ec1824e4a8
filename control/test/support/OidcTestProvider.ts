import { Effect, type Scope } from "effect"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
// @ts-ignore -- oidc-provider ships no types; the test uses a handful of its options.
import Provider from "oidc-provider"

/** An account at the test provider: what its claims say about it. */
export interface TestAccount {
  readonly email: string
  readonly groups: ReadonlyArray<string>
}

export interface TestProvider {
  /** `http://localhost:PORT`: another host than control's 127.0.0.1, so the two keep their own cookies. */
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret: string
  /** Starts answering, with this client registered for `redirectUris` (known once the controls have started). */
  readonly register: (redirectUris: ReadonlyArray<string>) => void
}

/**
 * A real OpenID provider (`oidc-provider`) on loopback with its development login and consent
 * forms (any password), a confidential client, and `groups` released under the `groups` scope.
 * Its HTTP server listens first (the issuer URL is known) and the provider is built once the
 * relying parties' callback URLs are.
 */
export const startTestProvider = (
  accounts: Record<string, TestAccount>,
): Effect.Effect<TestProvider, never, Scope.Scope> =>
  Effect.gen(function* () {
    let handler: ((req: unknown, res: unknown) => void) | undefined
    const server: Server = createServer((req, res) => {
      if (handler === undefined) res.writeHead(503).end("provider not ready")
      else handler(req, res)
    })
    yield* Effect.acquireRelease(
      Effect.promise(() => new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok))),
      () => Effect.promise(() => new Promise<void>((ok) => server.close(() => ok()))),
    )
    const issuer = `http://localhost:${(server.address() as AddressInfo).port}`
    const clientId = "paws-control"
    const clientSecret = "test-client-secret-0123456789abcdef"
    const register = (redirectUris: ReadonlyArray<string>) => {
      const provider = new Provider(issuer, {
        clients: [{
          client_id: clientId,
          client_secret: clientSecret,
          redirect_uris: [...redirectUris],
          grant_types: ["authorization_code"],
          response_types: ["code"],
        }],
        scopes: ["openid", "email", "groups"],
        claims: { openid: ["sub"], email: ["email", "email_verified"], groups: ["groups"] },
        findAccount: (_ctx: unknown, id: string) => {
          const account = accounts[id]
          if (account === undefined) return undefined
          return {
            accountId: id,
            claims: () => ({ sub: id, email: account.email, email_verified: true, groups: [...account.groups] }),
          }
        },
        cookies: { keys: ["paws-test-provider-cookie-key"] },
        features: { devInteractions: { enabled: true } },
      })
      provider.on("server_error", (_ctx: unknown, err: unknown) => console.error("PROVIDER", err))
      handler = provider.callback()
    }
    return { issuer, clientId, clientSecret, register }
  })
