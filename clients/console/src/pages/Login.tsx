import { useEffect, useState } from "preact/hooks"
import { auth, type Me, problem } from "../api.ts"

/** Sign in with an API key (exchanged for an HttpOnly session cookie), or with the identity provider when set up. */
export const Login = (props: { onSignedIn: (me: Me) => void }) => {
  const [key, setKey] = useState("")
  const [error, setError] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  const [oidc, setOidc] = useState(false)
  useEffect(() => void auth.oidcEnabled().then(setOidc), [])

  const submit = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setError(undefined)
    const reply = await auth.login(key.trim()).catch((e: unknown) => ({ data: undefined, error: String(e) }))
    setBusy(false)
    if (reply.data !== undefined) props.onSignedIn(reply.data)
    else setError(problem(reply.error, "sign-in failed"))
  }

  const returnTo = location.pathname === "/login" ? "/" : location.pathname + location.search
  return (
    <main class="login">
      <h1>paws console</h1>
      <form onSubmit={submit} aria-describedby="login-help">
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="key"
          type="password"
          autoComplete="current-password"
          required
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
        />
        <p id="login-help" class="muted">The key stays in this request; the console keeps only a session cookie.</p>
        {error === undefined ? null : <p role="alert" class="error">{error}</p>}
        <button type="submit" disabled={busy}>Sign in</button>
      </form>
      {oidc
        ? (
          <p>
            <a class="button" href={`/v1/auth/oidc/login?returnTo=${encodeURIComponent(returnTo)}`}>
              Sign in with your identity provider
            </a>
          </p>
        )
        : null}
    </main>
  )
}
