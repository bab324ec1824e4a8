import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Stream } from "effect"
import type { Layer } from "effect"
import type { ProxyAuditEvent, SessionEvent } from "@paws/core"
import { existsSync, readFileSync } from "node:fs"
import { runArgv } from "../../src/HostCommand.ts"
import { labelledProcesses } from "../../src/network/Reconciler.ts"
import { hostMac } from "../../src/network/Naming.ts"
import { LiveSessions } from "../../src/session/LiveSessions.ts"
import { needlesOf, newCanary, scanText } from "./CanaryScan.ts"
import { type Attempt, escapeScript, type ProbeTarget, tcpDnsRcode } from "./EscapeProbe.ts"
import { parseAttempts } from "./EscapeProbe.ts"
import {
  addBaitAddresses,
  baitAddresses,
  baitLink,
  type BaitSpec,
  type Hit,
  type Listening,
  listeningIn,
  resolvConfIn,
  startBait,
} from "./EscapeWorld.ts"
import { assertNothingLeft, dispatchOf, runToEnd } from "./Sessions.ts"
import { assertUnprivilegedStatus, type Privileges, privilegesOf } from "./ProxyPrivileges.ts"
import { linksIn, probe, reach, sh, udpFlow } from "./TestNet.ts"
import { type Received, TestWorld } from "./TestNode.ts"

/** The host's listeners the guest must never reach (plus whatever else `ss` finds listening). */
const bait: ReadonlyArray<BaitSpec & { readonly what: string }> = [
  { proto: "tcp", ip: "0.0.0.0", port: 7711, tag: "node-rpc", what: "the node's RPC port" },
  { proto: "tcp", ip: baitAddresses.other, port: 4000, tag: "control-api", what: "a control API on another address" },
  { proto: "tcp", ip: "0.0.0.0", port: 22, tag: "host-ssh", what: "the host's SSH" },
  { proto: "tcp", ip: "127.0.0.1", port: 5432, tag: "host-db", what: "a loopback-only database" },
  { proto: "tcp", ip: baitAddresses.other, port: 80, tag: "host-http", what: "the host's web server" },
  { proto: "tcp", ip: baitAddresses.other, port: 443, tag: "host-https", what: "the host's TLS server" },
  { proto: "tcp", ip: "0.0.0.0", port: 53, tag: "fake-dns-tcp", what: "a DNS server on the host (TCP)" },
  { proto: "udp", ip: "0.0.0.0", port: 53, tag: "fake-dns-udp", what: "a DNS server on the host (UDP)" },
  { proto: "udp", ip: "0.0.0.0", port: 5353, tag: "host-mdns", what: "a UDP service on the host" },
  { proto: "udp", ip: "0.0.0.0", port: 123, tag: "host-ntp", what: "NTP on the host" },
  { proto: "tcp", ip: baitAddresses.metadata, port: 80, tag: "metadata-http", what: "cloud metadata (HTTP)" },
  { proto: "tcp", ip: baitAddresses.metadata, port: 8080, tag: "metadata-alt", what: "a metadata side port" },
  { proto: "tcp", ip: "::", port: 7712, tag: "host-v6", what: "an IPv6-only host service" },
  { proto: "tcp", ip: "::", port: 80, tag: "host-v6-http", what: "the host's web server over IPv6" },
  { proto: "tcp", ip: "::", port: 443, tag: "host-v6-https", what: "the host's TLS server over IPv6" },
  { proto: "udp", ip: "::", port: 5353, tag: "host-v6-udp", what: "a UDP service on the host over IPv6" },
]

/** The proxy processes in a netns (`paws proxy` main script on their command line) and their privileges. */
const proxiesIn = (netns: string) =>
  sh(["ip", "netns", "pids", netns]).pipe(
    Effect.map((out) =>
      out.split(/\s+/).filter((p) => /^\d+$/.test(p)).map(Number).flatMap((pid) => {
        try {
          const p = privilegesOf(pid)
          return p.cmdline.some((a) => a.endsWith("proxy/src/main.ts")) ? [[pid, p] as const] : []
        } catch {
          return [] // exited meanwhile
        }
      })
    ),
  )

/** Every test may wait for the one shared run (two VM boots and the probe workload). */
const slow = 400_000

/** EUI-64 link-local address of a MAC (what the host end of every TAP gets). */
const linkLocalOf = (mac: string): string => {
  const b = mac.split(":").map((x) => parseInt(x, 16))
  const w = [(b[0]! ^ 2) << 8 | b[1]!, b[2]! << 8 | 0xff, 0xfe << 8 | b[3]!, b[4]! << 8 | b[5]!]
  return `fe80::${w.map((x) => x.toString(16)).join(":")}`.replace(/^fe80::0:/, "fe80::")
}
const hostLinkLocal = linkLocalOf(hostMac)

/** Ports DNATed to the proxy over IPv4: the guest reaches its proxy there, tested separately. */
const proxiedPorts = new Set([80, 443, 53])

/** Every way the guest could name each listening socket: its gateway, other local addresses, IPv6. */
const targetsOf = (listening: ReadonlyArray<Listening>, bHost: string) => {
  const tcp: Array<ProbeTarget> = []
  const udp: Array<ProbeTarget> = []
  for (const l of listening) {
    const spec = bait.find((b) =>
      b.proto === l.proto && b.port === l.port && (b.ip === l.address || (b.ip === "::" && l.address === "*"))
    )
    const tag = spec?.tag ?? (l.address === bHost ? `bproxy-${l.proto}-${l.port}` : `listener-${l.proto}-${l.port}`)
    const hosts: Array<[string, string]> = []
    if (l.address === "0.0.0.0" || l.address === "*") {
      hosts.push(["gw", "$GW"], ["other", baitAddresses.other], ["bhost", bHost])
    } else if (l.address.startsWith("127.")) hosts.push(["gw", "$GW"])
    else if (!l.address.includes(":")) hosts.push(["self", l.address])
    if (l.address === "::" || l.address === "*" || l.address === "::1") {
      hosts.push(["v6ll", `[${hostLinkLocal}%25eth0]`], ["v6", `[${baitAddresses.v6}]`])
    }
    for (const [where, host] of hosts) {
      if (l.proto === "tcp" && proxiedPorts.has(l.port) && !host.startsWith("[")) continue
      ;(l.proto === "tcp" ? tcp : udp).push({ name: `${tag}@${where}`, host, port: l.port })
    }
  }
  return { tcp, udp }
}

interface Run {
  readonly attempts: ReadonlyMap<string, Attempt>
  readonly stdout: string
  readonly stderr: string
  readonly statuses: ReadonlyArray<string>
  readonly hits: ReadonlyArray<Hit>
  readonly controlHits: ReadonlyArray<Hit>
  readonly controlAnswers: ReadonlyArray<string>
  readonly received: ReadonlyArray<Received>
  readonly audits: ReadonlyArray<ProxyAuditEvent>
  readonly listening: ReadonlyArray<Listening>
  readonly targets: ReturnType<typeof targetsOf>
  readonly bGuestListener: string
  readonly hostToBProxy: ReadonlyArray<string>
  /** What the host's end of its UDP flow with VM B received while VM A forged B's replies. */
  readonly bFlowHeard: ReadonlyArray<string>
  /** Every proxy process in the node's netns while VM B ran (B's, pooled ones), as /proc showed it. */
  readonly proxies: ReadonlyArray<readonly [number, Privileges]>
  /** VM B's QEMU loaded a snapshot (`-incoming`) rather than booting. */
  readonly bRestored: boolean
  readonly bTapV6: string
  readonly neighAfter: string
  readonly gw: string
}

const canary = newCanary()
const canaryB = newCanary()
const visible = `visible-${crypto.randomUUID()}`
const tunnelNames = [
  `${Buffer.from(`exfil ${crypto.randomUUID()}`).toString("hex").match(/.{1,60}/g)!.join(".")}.t.tunnel.example`,
  `c2VjcmV0LWRhdGE.${Date.now()}.dns-exfil.example`,
]

const collect = Effect.scoped(Effect.gen(function* () {
  const world = yield* TestWorld
  const sessions = yield* LiveSessions
  yield* addBaitAddresses(world.netns)
  yield* resolvConfIn(world.netns)
  const baited = yield* startBait(world.netns, bait)

  // Controls: every bait answers from the host side, and a resolver lookup by any process
  // started in the netns (as the proxies are) reaches the fake DNS server.
  const controlAnswers = yield* Effect.forEach(
    bait.filter((b) => !(b.proto === "udp" && b.ip === "::")),
    (b) => probe(world.netns, b.proto, b.ip === "0.0.0.0" ? "127.0.0.1" : b.ip === "::" ? "::1" : b.ip, b.port),
    { concurrency: 4 },
  )
  yield* runArgv(["ip", "netns", "exec", world.netns, "getent", "hosts", "resolver-control.example"]).pipe(
    Effect.ignore,
  )
  const controlHits = baited.hits.splice(0)

  // VM B idles with a listener; VM A tries to escape.
  const b = dispatchOf(
    "printf '#!/bin/sh\\necho b-guest\\n' > /tmp/hi; chmod +x /tmp/hi; nc -ll -p 8080 -e /tmp/hi & echo up; sleep 300",
    {
      timeoutMs: 300_000,
      network: { allowOut: ["api.test"], credentials: { "api.test": { headers: { "x-api-key": canaryB } } } },
    },
  )
  const bUp = yield* Deferred.make<void>()
  const bFiber = yield* sessions.run(b).pipe(
    Stream.runForEach((e: SessionEvent) => e._tag === "output" ? Deferred.succeed(bUp, undefined) : Effect.void),
    Effect.forkChild,
  )
  yield* Deferred.await(bUp)
  const links = JSON.parse(yield* sh(["ip", "-n", world.netns, "-j", "-d", "addr", "show"])) as Array<
    { ifname: string; ifalias?: string; addr_info: Array<{ local: string; family: string }> }
  >
  const bLink = links.find((l) => l.ifalias === `paws-session=${b.sessionId}`)!
  const bHost = bLink.addr_info.find((a) => a.family === "inet")!.local
  const bGuest = bHost.replace(/\d+$/, (n) => String(Number(n) + 1))
  const bTapV6 = bLink.addr_info.filter((a) => a.family === "inet6").map((a) => a.local).join(" ")
  const bGuestListener = yield* probe(world.netns, "tcp", bGuest, 8080)
  const bQemu = (yield* labelledProcesses(Option.some(world.netns))).find((p) => p.sessionId === b.sessionId)
  const bRestored = bQemu !== undefined &&
    readFileSync(`/proc/${bQemu.pid}/cmdline`, "utf8").split("\0").includes("-incoming")
  const listening = yield* listeningIn(world.netns)
  const targets = targetsOf(listening, bHost)
  const bProxyTcp = listening.filter((l) => l.address === bHost && l.proto === "tcp").map((l) => l.port)
  // Only B's TAP reaches B's proxy: a process on the host (here root, in the node's netns) does not.
  const hostToBProxy = yield* Effect.forEach(bProxyTcp, (port) => reach(world.netns, bHost, port), { concurrency: 4 })
  const proxies = yield* proxiesIn(world.netns)

  // A flow the host keeps open with B from another local address (so only the established rule's
  // source check stands between it and a guest forging B's replies; B's table never sees them).
  const bFlow = { host: baitAddresses.other, port: 47001, bPort: 47000 }
  const bFlowHeard = yield* udpFlow(world.netns, bFlow.host, bFlow.port, bGuest, bFlow.bPort)

  const receivedBefore = world.received.length
  const script = escapeScript({
    ...targets,
    bHost,
    bGuest,
    bProxyTcp,
    hostLinkLocal,
    hostMac,
    v6Bait: baitAddresses.v6,
    otherBait: baitAddresses.other,
    metadata: baitAddresses.metadata,
    tunnelNames,
    bFlow,
  })
  const a = yield* runToEnd(dispatchOf(script, {
    timeoutMs: 200_000,
    workload: { type: "script", script, env: { VISIBLE: visible } },
    network: {
      allowOut: ["api.test", "echo.test"],
      credentials: { "api.test": { headers: { "x-api-key": canary } } },
    },
  }))
  const neighAfter = yield* sh(["ip", "-n", world.netns, "neigh", "show"])
  yield* sessions.cancel(b.sessionId)
  yield* Fiber.join(bFiber)
  const stdout = a.result.stdout
  return {
    attempts: parseAttempts(stdout),
    stdout,
    stderr: a.result.stderr,
    statuses: a.statuses,
    hits: [...baited.hits],
    controlHits,
    controlAnswers,
    received: world.received.slice(receivedBefore),
    audits: a.events.flatMap((e) => (e._tag === "audit" ? [e.event] : [])),
    listening,
    targets,
    bGuestListener,
    hostToBProxy,
    proxies,
    bFlowHeard: [...bFlowHeard],
    bRestored,
    bTapV6,
    neighAfter,
    gw: stdout.match(/^gw=(.*)$/m)?.[1] ?? "",
  } satisfies Run
}))

// One run for the whole file (its failure too: no test boots the VMs again).
// Started once, detached from the test that first asks (a test timing out must not restart it).
let run: Exit.Exit<Run, unknown> | undefined
let running: Promise<Exit.Exit<Run, unknown>> | undefined
const results = Effect.gen(function* () {
  const context = yield* Effect.context<LiveSessions | TestWorld>()
  running ??= Effect.runPromiseExit(Effect.provideContext(collect, context)).then((exit) => (run = exit))
  const exit = yield* Effect.promise(() => running!)
  return yield* (Exit.isSuccess(exit) ? Effect.succeed(exit.value) : Effect.failCause(exit.cause))
})

const tally = { attempts: new Set<string>(), blocked: new Set<string>() }
const attempt = (r: Run, name: string): Attempt => {
  const a = r.attempts.get(name)
  assert.isDefined(a, `attempt ${name} did not run:\n${r.stdout.slice(0, 3000)}\n${r.stderr.slice(-2000)}`)
  tally.attempts.add(name)
  return a!
}
/** The attempt got nothing back, no answer and no reset (the packets were dropped): nc timed out, curl 28. */
const dropped = (r: Run, name: string) => {
  const a = attempt(r, name)
  if (a.detail.startsWith("nc")) {
    assert.notStrictEqual(a.code, "0", `${name} connected: ${a.detail}`)
    assert.match(a.detail, /^nc (nc: timed out)?$/, `${name} must time out (dropped)`)
  } else {
    assert.strictEqual(a.code, "28", `${name} must time out (dropped): ${a.detail}`)
    assert.match(a.detail, /^http=000 /, name)
  }
  tally.blocked.add(name)
}
const httpStatus = (a: Attempt) => a.detail.match(/^http=(\d+)/)?.[1]
/** The proxy answered with `status` (and it was a refusal, so the attempt was blocked there). */
const refused = (r: Run, name: string, status: string) => {
  const a = attempt(r, name)
  assert.strictEqual(httpStatus(a), status, `${name}: ${a.detail}`)
  tally.blocked.add(name)
}
const hitsOf = (r: Run, tag: string) => r.hits.filter((h) => h.tag === tag)
const probesUpstream = (r: Run, marker: string) =>
  r.received.filter((x) => x.url.includes(marker) || x.method === "CONNECT")

/** Guest output is large (every attempt's detail): the session's cap is raised for the probe. */
export const escapeNodeConfig = { PAWS_NODE_OUTPUT_CAP_BYTES: String(8 * 1024 * 1024) }

/**
 * The escape suite against the VMs `world` starts: one shared run per test file (vitest gives
 * each file its own module state), then one test per way out.
 */
export const escapeSuite = (
  title: string,
  world: Layer.Layer<LiveSessions | TestWorld, unknown>,
  restored: boolean,
) =>
  layer(world, {
    excludeTestServices: true,
    timeout: 360_000,
  })(title, (it) => {
    it.effect(
      "probe controls: the guest's allowed paths work and every bait answers from the host side",
      () =>
        Effect.gen(function* () {
          const r = yield* results
          assert.deepStrictEqual(
            r.statuses,
            ["starting", "running", "completed"],
            `${r.stdout.slice(0, 6000)}\n${r.stderr.slice(-3000)}`,
          )
          assert.strictEqual(httpStatus(attempt(r, "ctl-https-api")), "200", attempt(r, "ctl-https-api").detail)
          const ctl = r.received.find((x) => x.url === "/ctl")
          assert.strictEqual(ctl?.headers["x-api-key"], canary, "the credential is injected on the allowed path")
          assert.include(attempt(r, "ctl-dns-api").detail, r.gw)
          assert.match(r.gw, /^172\.16\.0\.\d+$/)
          for (const [i, b] of bait.filter((b) => !(b.proto === "udp" && b.ip === "::")).entries()) {
            assert.strictEqual(r.controlAnswers[i], b.tag, `host-side control of ${b.tag}`)
          }
          assert.isAbove(r.controlHits.filter((h) => h.tag === "fake-dns-udp").length, 0, "the fake DNS hears a lookup")
          assert.strictEqual(r.bGuestListener, "b-guest", "VM B's listener answers the host")
          assert.strictEqual(r.bRestored, restored, restored ? "VMs are restored clones" : "VMs are cold-booted")
        }),
      slow,
    )

    for (const b of bait) {
      const viaProxy = b.proto === "tcp" && proxiedPorts.has(b.port) && !b.ip.includes(":")
      if (viaProxy) continue // port 80/443/53 over IPv4 reach the proxy: tests below
      it.effect(
        `blocks ${b.what} (${b.proto} ${b.ip}:${b.port}) at every address the guest can name`,
        () =>
          Effect.gen(function* () {
            const r = yield* results
            const names = [...r.targets.tcp, ...r.targets.udp].filter((t) => t.name.startsWith(`${b.tag}@`))
            assert.isAbove(names.length, 0, `no attempt aimed at ${b.tag}`)
            for (const t of names) {
              if (b.proto === "tcp" && t.host.startsWith("[")) {
                assert.include(["28", "7"], attempt(r, t.name).code, t.name) // see the IPv6 test below
                tally.blocked.add(t.name)
              } else if (b.proto === "tcp") dropped(r, t.name)
              else {
                const a = attempt(r, t.name)
                assert.notStrictEqual(a.code, "0", `${t.name}: ${a.detail}`)
                assert.notInclude(a.detail, b.tag)
                tally.blocked.add(t.name)
              }
            }
            assert.deepStrictEqual(hitsOf(r, b.tag), [], `${b.tag} was reached`)
          }),
        slow,
      )
    }

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

    it.effect(
      "the guest holds the proxy CA's certificate but no private key anywhere on its disk",
      () =>
        Effect.gen(function* () {
          const r = yield* results
          assert.strictEqual(attempt(r, "ctl-ca-cert-present").code, "1")
          const visibleFiles = attempt(r, "ctl-fs-visible")
          assert.include(visibleFiles.detail, "/root/visible.txt", "the file scan finds what is there")
          assert.strictEqual(attempt(r, "fs-private-key").code, "0", attempt(r, "fs-private-key").detail)
          tally.blocked.add("fs-private-key")
        }),
      slow,
    )

    it.effect(
      "the credential is nowhere the guest can read: env, files, /proc, processes, kernel cmdline, dmesg",
      () =>
        Effect.gen(function* () {
          const r = yield* results
          assert.strictEqual(attempt(r, "fs-canary").code, "0", attempt(r, "fs-canary").detail)
          // The dump covered what it claims (so absence means something) ...
          const dump = r.stdout.slice(r.stdout.indexOf("--- guest view ---"))
          assert.include(dump, "--- end ---")
          for (const marker of [`VISIBLE=${visible}`, "vm.ip=", "Linux version", "dropbear", "BEGIN CERTIFICATE"]) {
            assert.include(dump, marker)
          }
          // ... and holds neither VM's credential in any encoding.
          const findings = [canary, canaryB].flatMap((c) => scanText(r.stdout + r.stderr, needlesOf(c), "guest"))
          assert.deepStrictEqual(findings, [])
          tally.blocked.add("fs-canary")
        }),
      slow,
    )

    it.effect("leaves nothing behind (TAPs, tables, QEMU, proxies, bait)", () =>
      Effect.gen(function* () {
        const world = yield* TestWorld
        yield* results
        yield* assertNothingLeft
        assert.notInclude(yield* linksIn(world.netns), baitLink)
        assert.isFalse(existsSync(`/etc/netns/${world.netns}`))
        const unblocked = [...tally.attempts].filter((n) => !tally.blocked.has(n) && !n.startsWith("ctl-"))
        console.log(
          `escape suite: ${tally.blocked.size} escape attempts blocked of ${
            [...tally.attempts].filter((n) => !n.startsWith("ctl-")).length
          } tried (${run && Exit.isSuccess(run) ? run.value.attempts.size : 0} probe lines); not blocked: ${
            JSON.stringify(unblocked)
          }`,
        )
      }), slow)
  })
