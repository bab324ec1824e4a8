import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Scope } from "effect"
import { Firewall, renderRuleset } from "../src/network/Firewall.ts"
import { HostCommand } from "../src/HostCommand.ts"
import { guestMac, hostMac, tableName, tapName } from "../src/network/Naming.ts"
import { NetworkSlot, type Slot } from "../src/network/NetworkSlot.ts"
import { AddressSlots, InvalidPool, parsePool, slotAddresses } from "../src/network/AddressSlots.ts"
import { hostCommandIn, linksIn, probe, probeScript, serve, sh, tablesIn, testNetns } from "./support/TestNet.ts"

const sid = (n: number) => `0190f000-0000-7000-8000-${n.toString(16).padStart(12, "0")}`

describe("AddressSlots", () => {
  it("carves /30 blocks: host .1, guest .2", () => {
    const pool = parsePool("172.16.0.0/16")
    assert(!(pool instanceof InvalidPool))
    assert.strictEqual(pool.size, 16384)
    assert.deepStrictEqual(slotAddresses(pool, 0), {
      index: 0,
      hostIp: "172.16.0.1",
      guestIp: "172.16.0.2",
      prefixLength: 30,
    })
    assert.strictEqual(slotAddresses(pool, 65).hostIp, "172.16.1.5")
    assert.strictEqual(slotAddresses(pool, 16383).guestIp, "172.16.255.254")
    assert(parsePool("172.16.0.1/16") instanceof InvalidPool)
    assert(parsePool("300.0.0.0/16") instanceof InvalidPool)
    assert(parsePool("10.0.0.0/31") instanceof InvalidPool)
  })

  it.effect("hands out each slot once and fails when exhausted", () =>
    Effect.gen(function* () {
      const pool = yield* AddressSlots.make({ base: 0x0a000000, size: 2 })
      const a = yield* pool.allocate
      const b = yield* pool.allocate
      assert.notStrictEqual(a.index, b.index)
      const full = yield* Effect.exit(pool.allocate)
      assert(Exit.isFailure(full))
      yield* pool.free(a.index)
      assert.strictEqual((yield* pool.allocate).index, a.index)
    }))
})

describe("Naming", () => {
  it("fits TAP names in 15 chars and keeps the session id in the table name", () => {
    const id = "0190f3a2-7b1c-7def-8abc-0123456789ab"
    assert.strictEqual(tapName(id), "pw0123456789ab")
    assert.strictEqual(tableName(id), "paws_0190f3a27b1c7def8abc0123456789ab")
  })
})

const slotLayer = (netns: string, pool: string) =>
  NetworkSlot.layerNoDeps.pipe(
    Layer.provide(Layer.succeed(HostCommand, hostCommandIn(netns))),
    Layer.provide(Layer.effect(AddressSlots, AddressSlots.make(parsePool(pool) as { base: number; size: number }))),
  )

describe("NetworkSlot", () => {
  it.live("creates a labelled TAP with fixed MAC, /30 and permanent neighbour; deletes it on release", () =>
    Effect.scoped(Effect.gen(function* () {
      const ns = yield* testNetns("slot")
      const scope = yield* Scope.make()
      const slot = yield* NetworkSlot.use((s) => s.acquire(sid(1))).pipe(
        Scope.provide(scope),
        Effect.provide(slotLayer(ns, "10.77.0.0/29")),
      )
      assert.strictEqual(slot.tap, "pw000000000001")
      const [link] = JSON.parse(yield* sh(["ip", "-n", ns, "-j", "-d", "addr", "show", "dev", slot.tap])) as Array<
        {
          address: string
          ifalias: string
          linkinfo: { info_kind: string }
          addr_info: Array<{ local: string; prefixlen: number }>
        }
      >
      assert.strictEqual(link!.address, hostMac)
      assert.strictEqual(link!.ifalias, `paws-session=${sid(1)}`)
      assert.strictEqual(link!.linkinfo.info_kind, "tun")
      assert.deepStrictEqual(link!.addr_info.map((a) => `${a.local}/${a.prefixlen}`), ["10.77.0.1/30"])
      const neigh = yield* sh(["ip", "-n", ns, "neigh", "show", "dev", slot.tap])
      assert.include(neigh, `10.77.0.2 lladdr ${guestMac} PERMANENT`)
      yield* Scope.close(scope, Exit.void)
      assert.notInclude(yield* linksIn(ns), slot.tap)
    })))
})

/** A veth stands in for the TAP: its far end lives in a "guest" netns with the guest address. */
const fakeGuest = (hostNs: string, slot: Slot) =>
  Effect.gen(function* () {
    const guestNs = yield* testNetns("g")
    yield* sh(["ip", "-n", hostNs, "link", "add", slot.tap, "type", "veth", "peer", "name", "eth0", "netns", guestNs])
    yield* sh(["ip", "-n", hostNs, "addr", "add", `${slot.hostIp}/30`, "dev", slot.tap])
    yield* sh(["ip", "-n", hostNs, "link", "set", slot.tap, "up"])
    yield* sh(["ip", "-n", guestNs, "addr", "add", `${slot.guestIp}/30`, "dev", "eth0"])
    yield* sh(["ip", "-n", guestNs, "link", "set", "eth0", "up"])
    yield* sh(["ip", "-n", guestNs, "route", "add", "default", "via", slot.hostIp])
    return guestNs
  })

const vethSlot = (n: number, hostIp: string, guestIp: string): Slot => ({
  index: n,
  hostIp,
  guestIp,
  prefixLength: 30,
  sessionId: sid(n),
  tap: tapName(sid(n)),
  hostMac,
  guestMac,
})

/**
 * The host sends from `from:port` to guest B's UDP 5000 (B answers once), then guest A sends three
 * datagrams forged as B's reply (B's address, port 5000, to `from:port`). What the host received.
 */
const heardOnFlow = (ns: string, ga: string, b: Slot, from: string, port: number) =>
  Effect.gen(function* () {
    const run = (netns: string, args: ReadonlyArray<string>) =>
      sh(["ip", "netns", "exec", netns, process.execPath, probeScript, ...args])
    const flow = yield* run(ns, ["udp-flow", "udp", from, String(port), b.guestIp, "5000"]).pipe(Effect.forkChild)
    yield* Effect.sleep("500 millis")
    for (let i = 0; i < 3; i++) {
      yield* run(ga, ["udp-send", "udp", b.guestIp, "5000", from, String(port), "forged-by-A"])
    }
    return (yield* Fiber.join(flow)).trim().split("\n").at(-1)!.split(",")
  })

describe("Firewall", () => {
  it("renders a table named after the session with no `fwd` chain", () => {
    const text = renderRuleset(vethSlot(1, "10.0.0.1", "10.0.0.2"), { https: 1, http: 2, dnsUdp: 3, dnsTcp: 4 })
    assert.include(text, `table inet paws_0190f0000000700080000000`)
    assert.notMatch(text, /chain fwd\b/)
  })

  it.live("sends 443/80/53 to the VM's proxy and drops everything else from the guest (and from other sources to its proxy)", () =>
    Effect.scoped(Effect.gen(function* () {
      const ns = yield* testNetns("fw")
      const a = vethSlot(1, "10.78.0.1", "10.78.0.2")
      const b = vethSlot(2, "10.78.0.5", "10.78.0.6")
      const ga = yield* fakeGuest(ns, a)
      const gb = yield* fakeGuest(ns, b)
      const ports = { https: 18443, http: 18080, dnsUdp: 18053, dnsTcp: 18054 }
      yield* serve(ns, "tcp", a.hostIp, ports.https, "proxyA-https")
      yield* serve(ns, "tcp", a.hostIp, ports.http, "proxyA-http")
      yield* serve(ns, "udp", a.hostIp, ports.dnsUdp, "proxyA-dns")
      yield* serve(ns, "tcp", a.hostIp, ports.dnsTcp, "proxyA-dnstcp")
      yield* serve(ns, "tcp", b.hostIp, ports.https, "proxyB-https")
      yield* serve(ns, "tcp", "0.0.0.0", 7711, "node-rpc")
      yield* serve(ga, "tcp", a.guestIp, 22, "ssh-A")
      yield* serve(gb, "tcp", b.guestIp, 22, "ssh-B")

      const fw = yield* Firewall.pipe(
        Effect.provide(Firewall.layerNoDeps.pipe(Layer.provide(Layer.succeed(HostCommand, hostCommandIn(ns))))),
      )
      const rules = yield* Scope.make()
      // Isolated first (proxy still starting): nothing from the guest gets in, SSH from the host works.
      yield* fw.isolate(a).pipe(Scope.provide(rules))
      assert.deepStrictEqual(
        yield* Effect.all([probe(ga, "tcp", "93.184.216.34", 443), probe(ga, "tcp", a.hostIp, 7711)], {
          concurrency: 2,
        }),
        ["BLOCKED", "BLOCKED"],
      )
      assert.strictEqual(yield* probe(ns, "tcp", a.guestIp, 22), "ssh-A")
      yield* fw.open(a, ports)
      // A's host address (its proxy) takes packets from A's TAP only: not from a local process in
      // the node's netns, nor from guest B even before B has a table of its own.
      assert.deepStrictEqual(
        yield* Effect.all([
          probe(ns, "tcp", a.hostIp, ports.https),
          probe(ns, "tcp", a.hostIp, ports.http),
          probe(ns, "udp", a.hostIp, ports.dnsUdp),
          probe(gb, "tcp", a.hostIp, ports.https),
          probe(gb, "udp", a.hostIp, ports.dnsUdp),
        ], { concurrency: "unbounded" }),
        ["BLOCKED", "BLOCKED", "BLOCKED", "BLOCKED", "BLOCKED"],
      )
      yield* fw.apply(b, ports).pipe(Scope.provide(rules))
      assert.includeMembers(yield* tablesIn(ns), [tableName(a.sessionId), tableName(b.sessionId)])

      const checks: Array<[string, "tcp" | "udp", string, number, string]> = [
        ["https anywhere", "tcp", "93.184.216.34", 443, "proxyA-https"],
        ["https to B's host IP", "tcp", b.hostIp, 443, "proxyA-https"],
        ["http anywhere", "tcp", "10.1.2.3", 80, "proxyA-http"],
        ["dns udp", "udp", "9.9.9.9", 53, "proxyA-dns"],
        ["dns tcp", "tcp", "1.1.1.1", 53, "proxyA-dnstcp"],
        ["proxy port directly", "tcp", a.hostIp, ports.https, "BLOCKED"],
        ["node RPC on host IP", "tcp", a.hostIp, 7711, "BLOCKED"],
        ["node RPC on B's host IP", "tcp", b.hostIp, 7711, "BLOCKED"],
        ["B's proxy directly", "tcp", b.hostIp, ports.https, "BLOCKED"],
        ["another VM", "tcp", b.guestIp, 22, "BLOCKED"],
        ["other address", "tcp", "1.2.3.4", 22, "BLOCKED"],
        ["other udp", "udp", a.hostIp, ports.dnsUdp, "BLOCKED"],
      ]
      const got = yield* Effect.forEach(checks, ([, proto, ip, port]) => probe(ga, proto, ip, port), {
        concurrency: "unbounded",
      })
      assert.deepStrictEqual(
        checks.map(([what, , , , want], i) => `${what}: ${got[i] === want ? "ok" : `got ${got[i]}`}`),
        checks.map(([what]) => `${what}: ok`),
      )
      // The host can still open connections to the guest (SSH), and its services work locally.
      assert.strictEqual(yield* probe(ns, "tcp", a.guestIp, 22), "ssh-A")
      assert.deepStrictEqual(
        yield* Effect.all([probe(ns, "tcp", b.hostIp, ports.https), probe(ga, "tcp", b.hostIp, ports.https)]),
        ["BLOCKED", "BLOCKED"],
      )

      // Flows the host opened to B (UDP, from B's host address and from another local address):
      // B's replies get in; guest A forging B's address and port (the reply tuple, so conntrack
      // calls it established) is dropped, whichever local address the flow uses.
      yield* serve(gb, "udp", b.guestIp, 5000, "reply-from-B")
      yield* sh(["ip", "-n", ga, "addr", "add", `${b.guestIp}/32`, "dev", "eth0"])
      yield* sh(["ip", "-n", ns, "addr", "add", "10.79.9.1/32", "dev", "lo"])
      const heard = yield* Effect.all([
        heardOnFlow(ns, ga, b, b.hostIp, 6000),
        heardOnFlow(ns, ga, b, "10.79.9.1", 6001),
      ], { concurrency: 2 })
      assert.deepStrictEqual(heard, [["reply-from-B"], ["reply-from-B"]], "the host's ends of B's flows heard only B")
      assert.strictEqual(yield* probe(ns, "tcp", "127.0.0.1", 7711), "node-rpc")

      yield* Scope.close(rules, Exit.void)
      assert.notInclude(yield* tablesIn(ns), tableName(a.sessionId))
      // Without the rules the same probe gets through: the firewall was what blocked it.
      assert.strictEqual(yield* probe(ga, "tcp", a.hostIp, 7711), "node-rpc")
    })))
})
