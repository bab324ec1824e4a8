import { HttpServerResponse } from "effect/http"

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)

const page = (title: string, body: string, head = "") =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>${head}</head>` +
  `<body><h1>${escape(title)}</h1>${body}</body></html>`

/** A refusal the person at the browser can read (and a test can match). */
export const refusalPage = (status: number, message: string) =>
  HttpServerResponse.text(page("Sign-in refused", `<p>${escape(message)}</p><p><a href="/">Back to paws</a></p>`), {
    status,
    contentType: "text/html; charset=utf-8",
  })

/**
 * Signed in: on to `returnTo` by a page, not a 302. A SameSite=Strict cookie set during a redirect
 * chain that began at another site (the provider) is not sent on that chain's next request; the
 * page's own navigation is same-site, so it is.
 */
export const continuePage = (returnTo: string) =>
  HttpServerResponse.text(
    page(
      "Signed in",
      `<p><a href="${escape(returnTo)}">Continue</a></p>`,
      `<meta http-equiv="refresh" content="0;url=${escape(returnTo)}">`,
    ),
    { contentType: "text/html; charset=utf-8" },
  )

/**
 * Where a sign-in may return to: a path on control (never another origin: `//host`, `/\\host`, a
 * scheme), else `/`.
 */
export const safeReturnTo = (value: string | null): string => {
  if (value === null || value.length > 2048 || !value.startsWith("/") || /[\s\\]/.test(value)) return "/"
  if ([...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) return "/"
  const base = "http://control.invalid"
  return URL.parse(value, base)?.origin === base ? value : "/"
}
