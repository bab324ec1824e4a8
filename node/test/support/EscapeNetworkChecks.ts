import { assert } from "@effect/vitest"
import { Effect } from "effect"
import { assertUnprivilegedStatus } from "./ProxyPrivileges.ts"
import {
  attempt,
  dropped,
  hitsOf,
  hostLinkLocal,
  httpStatus,
  proxiedPorts,
  refused,
  results,
  slow,
  tally,
} from "./EscapeRun.ts"
import type { EscapeIt } from "./EscapeSuite.ts"

/** The guest reaches nothing but its own proxy: not the host's ports, not another VM, not raw IPs, UDP, IPv6, link-local or a spoofed flow. */
export const networkChecks = (it: EscapeIt) => {
  it.effect(
    "blocks every other listening port in the netns (the test upstream) and covers all of them",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        for (const t of [...r.targets.tcp, ...r.targets.udp].filter((t) => t.name.startsWith("listener-"))) {
          if (t.name.startsWith("listener-tcp")) dropped(r, t.name)
          else assert.notStrictEqual(attempt(r, t.name).code, "0")
        }
        assert.isAbove(r.targets.tcp.filter((t) => t.name.startsWith("listener-tcp")).length, 0, "the upstream port")
        // Coverage: every listening socket got an attempt, unless the proxy answers that port.
        for (const l of r.listening) {
          const covered = [...r.targets.tcp, ...r.targets.udp].some((t) => t.port === l.port)
          assert.isTrue(covered || (l.proto === "tcp" && proxiedPorts.has(l.port)), JSON.stringify(l))
        }
      }),
    slow,
  )

  it.effect(
    "answers port 80 of the host itself with the proxy's refusal (403), never the host's web server",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        refused(r, "host-web-80", "403")
        assert.include(attempt(r, "host-web-80").detail, "x-paws-decision: denied_host")
        assert.deepStrictEqual(hitsOf(r, "host-http"), [])
      }),
    slow,
  )

  it.effect(
    "answers port 443 of the host itself with the proxy (no SNI: 421), never the host's TLS server",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        refused(r, "host-web-443", "421")
        assert.deepStrictEqual(hitsOf(r, "host-https"), [])
      }),
    slow,
  )

  it.effect("blocks another VM: its SSH, its listener, its proxy's ports, ICMP", () =>
    Effect.gen(function* () {
      const r = yield* results
      dropped(r, "othervm-ssh")
      dropped(r, "othervm-listener")
      const bproxy = r.targets.tcp.filter((t) => t.name.startsWith("bproxy-"))
      assert.isAtLeast(bproxy.length, 2, "VM B's proxy ports were found and tried")
      for (const t of bproxy) dropped(r, t.name)
      for (const t of r.targets.udp.filter((t) => t.name.startsWith("bproxy-"))) {
        assert.notStrictEqual(attempt(r, t.name).code, "0")
        tally.blocked.add(t.name)
      }
      for (const name of ["icmp-othervm", "icmp-host"]) {
        assert.notStrictEqual(attempt(r, name).code, "0", `${name} got a ping reply`)
        tally.blocked.add(name)
      }
    }), slow)

  it.effect(
    "a VM's proxy is reachable from its own TAP only (not from a host process) and runs unprivileged",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        assert.isAtLeast(r.hostToBProxy.length, 2, "VM B's proxy ports were found and tried")
        assert.deepStrictEqual(r.hostToBProxy, r.hostToBProxy.map(() => "BLOCKED"))
        assert.isAtLeast(r.proxies.length, 1, "VM B's proxy was found")
        const uids = r.proxies.map(([pid, p]) => assertUnprivilegedStatus(pid, p))
        assert.strictEqual(new Set(uids).size, uids.length, "each proxy has a uid of its own")
      }),
    slow,
  )

  it.effect("blocks raw IP addresses on non-proxied ports", () =>
    Effect.gen(function* () {
      const r = yield* results
      for (const name of ["raw-ip-22", "raw-ip-853", "raw-ip-8080"]) dropped(r, name)
    }), slow)

  it.effect(
    "sends raw-IP HTTP(S) to the proxy, which refuses it (403 / 421 without SNI); unlisted names 403",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        refused(r, "raw-ip-80", "403")
        refused(r, "raw-ip-443", "421")
        refused(r, "unlisted-host", "403")
        assert.isTrue(r.received.every((x) => ["api.test", "echo.test"].includes(x.host)), JSON.stringify(r.received))
      }),
    slow,
  )

  it.effect(
    "blocks UDP anywhere but DNS to its proxy (host ports, raw IPs, another VM)",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        for (const name of ["raw-ip-udp-123", "raw-ip-udp-443", "othervm-udp-69"]) {
          assert.notStrictEqual(attempt(r, name).code, "0", name)
          tally.blocked.add(name)
        }
        assert.isAbove(r.targets.udp.length, 3)
        assert.deepStrictEqual(r.hits.filter((h) => h.proto === "udp"), [])
      }),
    slow,
  )

  it.effect(
    "blocks IPv6 to the host (link-local and routed, every port); no host answers all-nodes pings",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        assert.include(attempt(r, "ctl-v6-guest-linklocal").detail, "fe80::", "the guest has IPv6")
        assert.include(attempt(r, "ctl-v6-guest-routed").detail, "fd77::2")
        assert.include(r.bTapV6, hostLinkLocal, "the host end really has the link-local address tried")
        const v6 = r.targets.tcp.filter((t) => t.host.startsWith("["))
        assert.isAtLeast(v6.length, 6)
        // No answer at all: dropped (curl 28), or neighbour discovery for the routed address got no
        // reply (ICMPv6 from the guest is dropped too: curl 7 after its NDP retries). Never a listener.
        for (const t of v6) {
          const a = attempt(r, t.name)
          assert.include(["28", "7"], a.code, `${t.name}: ${a.detail}`)
          assert.match(a.detail, /^http=000 /, t.name)
          tally.blocked.add(t.name)
        }
        assert.notInclude(attempt(r, "v6-allnodes").detail, hostLinkLocal)
        tally.blocked.add("v6-allnodes")
        assert.deepStrictEqual(r.hits.filter((h) => h.tag.startsWith("host-v6")), [])
      }),
    slow,
  )

  it.effect(
    "blocks link-local addresses; the metadata address gets the proxy's refusal, never the service",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        const ll = attempt(r, "linklocal-22") // on-link: nothing answers ARP for it, or dropped
        assert.match(ll.detail, /^nc (nc: timed out|.*No route to host)?$/, ll.detail)
        tally.blocked.add("linklocal-22")
        refused(r, "metadata-80", "403")
        refused(r, "metadata-443", "421")
        assert.deepStrictEqual([...hitsOf(r, "metadata-http"), ...hitsOf(r, "metadata-alt")], [])
      }),
    slow,
  )

  it.effect(
    "ARP/MAC/source spoofing reaches nothing new (nor another VM's flows) and changes no neighbour entry",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        // Probes around the spoofing worked: the normal source during it, and everything after it.
        assert.strictEqual(
          httpStatus(attempt(r, "ctl-spoof-src-normal")),
          "200",
          attempt(r, "ctl-spoof-src-normal").detail,
        )
        assert.strictEqual(httpStatus(attempt(r, "ctl-after-spoof")), "200")
        // Forged replies on an established flow of VM B's never reached the host's end of it.
        attempt(r, "spoof-src-established-udp")
        assert.deepStrictEqual(r.bFlowHeard.filter((x) => x.includes("forged")), [], "forged replies got in")
        tally.blocked.add("spoof-src-established-udp")
        const spoofed = [...r.attempts.keys()].filter((n) =>
          n.startsWith("spoof-") && n !== "spoof-src-established-udp"
        )
        assert.isAtLeast(spoofed.length, 10)
        for (const name of spoofed.filter((n) => !n.startsWith("spoof-garp"))) dropped(r, name)
        for (const name of spoofed.filter((n) => n.startsWith("spoof-garp"))) {
          assert.strictEqual(attempt(r, name).code, "0", `${name}: arping could send`)
          tally.blocked.add(name)
        }
        assert.notInclude(r.neighAfter, "52:54:00:66:66:66", r.neighAfter)
        assert.deepStrictEqual(r.hits, [])
      }),
    slow,
  )
}
