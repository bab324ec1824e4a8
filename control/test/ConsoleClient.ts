// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { Effect } from "effect"
import type { ControlHandle, Reply } from "./harness.ts"

/** The `paws_session` value of a response's Set-Cookie, and the raw header (for its attributes). */
export const sessionCookie = (headers: Headers): { value: string; header: string; name: string } | undefined => {
  const header = headers.getSetCookie().find((c) => /^(__Host-)?paws_session=/.test(c))
  if (header === undefined) return undefined
  const name = header.slice(0, header.indexOf("="))
  return { value: header.slice(name.length + 1).split(";")[0]!, header, name }
}

/** One request as the console's browser would make it: the cookie, no Authorization, maybe the CSRF header. */
export const asBrowser = (
  control: ControlHandle,
  method: string,
  path: string,
  options: {
    cookie?: string | undefined
    /** The sign-in cookie's name (`__Host-paws_session` over TLS). */
    cookieName?: string
    csrf?: string | undefined
    body?: unknown
    headers?: Record<string, string>
  } = {},
): Effect.Effect<Reply> =>
  Effect.promise(async () => {
    const headers: Record<string, string> = { ...options.headers }
    if (options.cookie !== undefined) headers["cookie"] = `${options.cookieName ?? "paws_session"}=${options.cookie}`
    if (options.csrf !== undefined) headers["x-paws-csrf"] = options.csrf
    if (options.body !== undefined) headers["content-type"] = "application/json"
    const res = await fetch(control.url + path, {
      method,
      headers,
      redirect: "manual",
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    })
    const text = await res.text()
    let body: any
    try {
      body = text === "" ? undefined : JSON.parse(text)
    } catch {
      body = undefined
    }
    return { status: res.status, headers: res.headers, body, text }
  })

/** Signs in with `key`; returns the cookie value and the login reply. */
export const loginWithKey = (control: ControlHandle, key: string) =>
  Effect.map(asBrowser(control, "POST", "/v1/auth/login", { body: { key } }), (reply) => ({
    reply,
    cookie: sessionCookie(reply.headers)?.value,
  }))
