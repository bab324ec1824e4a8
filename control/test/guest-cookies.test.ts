import { assert, describe, it } from "@effect/vitest"
import { guestSetCookie } from "../src/exposure/GuestCookies.ts"

describe("cookies a guest may set through an exposure", () => {
  it("never one named like control's, nor one with a Domain; the app's own stay host-only", () => {
    for (const tossed of ["paws_session=x", "__Host-paws_session=x; Secure", "PAWS_OIDC=x", "paws_port_abc=x"]) {
      assert.isUndefined(guestSetCookie(`${tossed}; Path=/`, ""), tossed)
      assert.isUndefined(guestSetCookie(`${tossed}; Path=/`, "/p/abc"), tossed)
    }
    // Host form: Domain=DOMAIN would reach control and every other exposure.
    assert.isUndefined(guestSetCookie("theme=dark; Domain=ports.example.com; Path=/", ""))
    assert.isUndefined(guestSetCookie("theme=dark; path=/; domain=.example.com", ""))
    assert.strictEqual(guestSetCookie("theme=dark; Path=/; HttpOnly", ""), "theme=dark; Path=/; HttpOnly")
  })

  it("in the path form, the app's cookies live under the exposure's own path", () => {
    assert.strictEqual(
      guestSetCookie("theme=dark; Path=/; Max-Age=60; SameSite=Lax", "/p/abc"),
      "theme=dark; Max-Age=60; SameSite=Lax; Path=/p/abc/",
    )
    assert.strictEqual(guestSetCookie("theme=dark", "/p/abc"), "theme=dark; Path=/p/abc/")
  })
})
