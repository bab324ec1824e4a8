import { assert } from "@effect/vitest"
import { Effect } from "effect"
import { tcpDnsRcode } from "./EscapeProbe.ts"
import {
  attempt,
  canary,
  hitsOf,
  httpStatus,
  probesUpstream,
  refused,
  results,
  slow,
  tally,
  tunnelNames,
} from "./EscapeRun.ts"
import type { EscapeIt } from "./EscapeSuite.ts"

/** What the proxy does with what reaches it: DNS, plain HTTP, SNI/Host, CONNECT, and where credentials go. */
export const proxyChecks = (it: EscapeIt) => {
  it.effect("answers DNS only from its own proxy, whichever resolver the guest asks", () =>
    Effect.gen(function* () {
      const r = yield* results
      const a = attempt(r, "ctl-dns-other-resolver")
      assert.include(a.detail, `Address: ${r.gw}`, a.detail)
      for (const name of ["dns-unlisted", "dns-unlisted-other-resolver", "dns-unlisted-host-ip"]) {
        assert.include(attempt(r, name).detail, "NXDOMAIN", name)
        tally.blocked.add(name)
      }
      const p5353 = attempt(r, "dns-port-5353")
      assert.notInclude(p5353.detail, "Address: ", "a resolver on another port answered")
      tally.blocked.add("dns-port-5353")
      assert.deepStrictEqual(hitsOf(r, "host-mdns"), [])
    }), slow)

  it.effect(
    "answers DNS tunnelling lookups NXDOMAIN (UDP and TCP) and never forwards them",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        for (const i of tunnelNames.keys()) {
          for (const name of [`dns-tunnel-a-${i}`, `dns-tunnel-txt-${i}`]) {
            assert.include(attempt(r, name).detail, "NXDOMAIN", name)
            tally.blocked.add(name)
          }
        }
        const tcp = attempt(r, "dns-tunnel-tcp")
        assert.strictEqual(tcpDnsRcode(tcp.detail), 3, `TCP DNS answer ${tcp.detail}`)
        tally.blocked.add("dns-tunnel-tcp")
        // The proxy saw (and refused) every tunnel name; no DNS server anywhere heard of them.
        for (const name of tunnelNames) {
          assert.isTrue(r.audits.some((e) => e.decision === "dns_refused" && e.host === name.toLowerCase()), name)
        }
        assert.deepStrictEqual([...hitsOf(r, "fake-dns-udp"), ...hitsOf(r, "fake-dns-tcp")], [])
      }),
    slow,
  )

  it.effect(
    "redirects plain HTTP to an allowlisted host (308); the upstream never sees it or the credential",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        refused(r, "plain-http-allowlisted", "308")
        assert.include(attempt(r, "plain-http-allowlisted").detail, "https://api.test/plain-probe")
        assert.deepStrictEqual(probesUpstream(r, "plain-probe"), [])
      }),
    slow,
  )

  it.effect(
    "refuses an SNI/Host mismatch (421) both ways and an absolute-form target (400)",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        refused(r, "sni-host-mismatch", "421")
        refused(r, "sni-host-mismatch-rev", "421")
        refused(r, "absolute-form", "400")
        assert.deepStrictEqual(probesUpstream(r, "mismatch-probe"), [])
        assert.deepStrictEqual(probesUpstream(r, "abs-probe"), [])
      }),
    slow,
  )

  it.effect("refuses CONNECT (as an HTTP proxy, as an HTTPS proxy, raw on port 80)", () =>
    Effect.gen(function* () {
      const r = yield* results
      for (const name of ["connect-https-proxy", "connect-http-proxy"]) {
        const a = attempt(r, name)
        assert.notStrictEqual(a.code, "0", `${name}: ${a.detail}`)
        assert.notMatch(a.detail, /^http=2/, name)
        tally.blocked.add(name)
      }
      assert.notInclude(attempt(r, "connect-raw-80").detail, " 200")
      tally.blocked.add("connect-raw-80")
      assert.deepStrictEqual(probesUpstream(r, "connect-probe"), [])
    }), slow)

  it.effect(
    "does not inject the credential into another host: a client-sent header there passes as is",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        assert.strictEqual(httpStatus(attempt(r, "forge-header-other-host")), "200")
        const forged = r.received.filter((x) => x.url === "/forge-probe")
        assert.strictEqual(forged.length, 1)
        assert.strictEqual(forged[0]!.host, "echo.test")
        assert.strictEqual(forged[0]!.headers["x-api-key"], "guest-forged")
        const echo = r.audits.filter((e) => e.host === "echo.test")
        assert.isTrue(echo.every((e) => (e.injected ?? []).length === 0), JSON.stringify(echo))
        for (const x of r.received.filter((x) => x.host !== "api.test")) {
          assert.notInclude(JSON.stringify(x.headers), canary)
        }
        tally.blocked.add("forge-header-other-host")
      }),
    slow,
  )
}
