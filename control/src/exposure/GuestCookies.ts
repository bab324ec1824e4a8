/**
 * Cookies a guest app may set through an exposure, and how. A guest must never toss a cookie at
 * control: not one named like control's (`paws_*`, `__Host-paws_*`, …: the console sign-in, a
 * pending OIDC login, other exposures' grants), and not one with a Domain attribute (in the host
 * form `Domain=DOMAIN` would reach control and every other exposure; cookies ignore ports, so in
 * the path form any Domain reaches control too). What is left stays host-only; in the path form it
 * is also pinned under the exposure's own path, so it never rides along on control's or another
 * exposure's requests.
 */
/** paws's own cookie names (sign-in, OIDC login, exposure grants), with or without a `__Host-`/`__Secure-` prefix. */
export const controlNamed = /^(__host-|__secure-)?paws_/i

/** The Set-Cookie header to relay for the guest's `value`, or undefined to drop it. */
export const guestSetCookie = (value: string, base: string): string | undefined => {
  const [pair = "", ...attributes] = value.split(";")
  const name = pair.split("=")[0]!.trim()
  if (name === "" || controlNamed.test(name)) return undefined
  const kept: Array<string> = [pair.trim()]
  for (const attribute of attributes) {
    const key = attribute.split("=")[0]!.trim().toLowerCase()
    if (key === "domain") return undefined
    // The path form: every cookie lives under /p/{id}/ (its own Path is dropped, ours is added).
    if (key === "path" && base !== "") continue
    if (attribute.trim() !== "") kept.push(attribute.trim())
  }
  if (base !== "") kept.push(`Path=${base}/`)
  return kept.join("; ")
}
