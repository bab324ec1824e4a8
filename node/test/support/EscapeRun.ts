import { assert } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Stream } from "effect"
import type { NodeSessionEvent, ProxyAuditEvent } from "@paws/core"
import { readFileSync } from "node:fs"
import { runArgv } from "../../src/HostCommand.ts"
import { labelledProcesses } from "../../src/network/Reconciler.ts"
import { hostMac } from "../../src/network/Naming.ts"
import { LiveSessions } from "../../src/session/LiveSessions.ts"
import { newCanary } from "./CanaryScan.ts"
import { type Attempt, escapeScript, type ProbeTarget } from "./EscapeProbe.ts"
import { parseAttempts } from "./EscapeProbe.ts"
import {
  addBaitAddresses,
  baitAddresses,
  type BaitSpec,
  type Hit,
  type Listening,
  listeningIn,
  resolvConfIn,
  startBait,
} from "./EscapeWorld.ts"
import { dispatchOf, runToEnd } from "./Sessions.ts"
import { type Privileges, privilegesOf } from "./ProxyPrivileges.ts"
import { probe, reach, sh, udpFlow } from "./TestNet.ts"
import { type Received, TestWorld } from "./TestNode.ts"
import { isProxyArgv } from "../../src/proxy/ProxyLaunch.ts"

/** The escape suite's one run per test file: bait, targets, the two VMs, the probe, and the tally. */
/** The host's listeners the guest must never reach (plus whatever else `ss` finds listening). */
export const bait: ReadonlyArray<BaitSpec & { readonly what: string }> = [
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

/** The proxy processes in a netns (from source or from its bundle) and their privileges. */
export const proxiesIn = (netns: string) =>
  sh(["ip", "netns", "pids", netns]).pipe(
    Effect.map((out) =>
      out.split(/\s+/).filter((p) => /^\d+$/.test(p)).map(Number).flatMap((pid) => {
        try {
          const p = privilegesOf(pid)
          return isProxyArgv(p.cmdline) ? [[pid, p] as const] : []
        } catch {
          return [] // exited meanwhile
        }
      })
    ),
  )

/** Every test may wait for the one shared run (two VM boots and the probe workload). */
export const slow = 400_000

/** EUI-64 link-local address of a MAC (what the host end of every TAP gets). */
export const linkLocalOf = (mac: string): string => {
  const b = mac.split(":").map((x) => parseInt(x, 16))
  const w = [(b[0]! ^ 2) << 8 | b[1]!, b[2]! << 8 | 0xff, 0xfe << 8 | b[3]!, b[4]! << 8 | b[5]!]
  return `fe80::${w.map((x) => x.toString(16)).join(":")}`.replace(/^fe80::0:/, "fe80::")
}
export const hostLinkLocal = linkLocalOf(hostMac)

/** Ports DNATed to the proxy over IPv4: the guest reaches its proxy there, tested separately. */
export const proxiedPorts = new Set([80, 443, 53])

/** Every way the guest could name each listening socket: its gateway, other local addresses, IPv6. */
export const targetsOf = (listening: ReadonlyArray<Listening>, bHost: string) => {
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

export interface Run {
  readonly attempts: ReadonlyMap<string, Attempt>
  readonly stdout: string
  readonly stderr: string
  readonly statuses: ReadonlyArray<string>
  /** Why probe session A ended as it did (the status event's reason, the result's exit code and error). */
  readonly ending: string
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

export const canary = newCanary()
export const canaryB = newCanary()
export const visible = `visible-${crypto.randomUUID()}`
export const tunnelNames = [
  `${Buffer.from(`exfil ${crypto.randomUUID()}`).toString("hex").match(/.{1,60}/g)!.join(".")}.t.tunnel.example`,
  `c2VjcmV0LWRhdGE.${Date.now()}.dns-exfil.example`,
]

export const collect = Effect.scoped(Effect.gen(function* () {
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
    Stream.runForEach((e: NodeSessionEvent) => e._tag === "output" ? Deferred.succeed(bUp, undefined) : Effect.void),
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
    ending: JSON.stringify({
      reasons: a.events.flatMap((e) => (e._tag === "status" && e.reason !== undefined ? [e.reason] : [])),
      exitCode: a.result?.exitCode,
      error: a.result?.error,
      truncated: a.result?.truncated,
    }),
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
export let run: Exit.Exit<Run, unknown> | undefined
export let running: Promise<Exit.Exit<Run, unknown>> | undefined
export const results = Effect.gen(function* () {
  const context = yield* Effect.context<LiveSessions | TestWorld>()
  running ??= Effect.runPromiseExit(Effect.provideContext(collect, context)).then((exit) => (run = exit))
  const exit = yield* Effect.promise(() => running!)
  return yield* (Exit.isSuccess(exit) ? Effect.succeed(exit.value) : Effect.failCause(exit.cause))
})

export const tally = { attempts: new Set<string>(), blocked: new Set<string>() }
export const attempt = (r: Run, name: string): Attempt => {
  const a = r.attempts.get(name)
  assert.isDefined(a, `attempt ${name} did not run:\n${r.ending}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`)
  tally.attempts.add(name)
  return a!
}
/** The attempt got nothing back, no answer and no reset (the packets were dropped): nc timed out, curl 28. */
export const dropped = (r: Run, name: string) => {
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
export const httpStatus = (a: Attempt) => a.detail.match(/^http=(\d+)/)?.[1]
/** The proxy answered with `status` (and it was a refusal, so the attempt was blocked there). */
export const refused = (r: Run, name: string, status: string) => {
  const a = attempt(r, name)
  assert.strictEqual(httpStatus(a), status, `${name}: ${a.detail}`)
  tally.blocked.add(name)
}
export const hitsOf = (r: Run, tag: string) => r.hits.filter((h) => h.tag === tag)
export const probesUpstream = (r: Run, marker: string) =>
  r.received.filter((x) => x.url.includes(marker) || x.method === "CONNECT")

/** Guest output is large (every attempt's detail): the session's cap is raised for the probe. */
export const escapeNodeConfig = { PAWS_NODE_OUTPUT_CAP_BYTES: String(8 * 1024 * 1024) }
