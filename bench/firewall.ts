/**
 * `npm run bench:firewall` (root): what the node's nftables work costs per session as sessions
 * accumulate, in a network namespace of its own (no TAPs needed: rules name interfaces by string).
 * Side by side, in one run, at 0, 64, 128 and 256 sessions already present:
 *   perSessionTable  today's design (Firewall.ts): a session start is two `nft -f` (the isolated
 *                    table, then the flush-and-open swap), its end one `nft delete table`
 *   sharedTable      a sketch of one node-wide table whose per-session state is set and map
 *                    elements (TAP, addresses, proxy ports): a start adds them in one `nft -f`,
 *                    an end deletes them in one
 * nft reads the whole ruleset into its cache on every run, so the first grows with every table
 * present; the second keeps the ruleset's rules fixed. Wall time of the nft processes (each is
 * one single-threaded process: about its CPU). Results: bench/results/firewall-<time>.json.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { newSessionId } from "@paws/core"
import { renderRuleset } from "../node/src/network/Firewall.ts"
import { tableName, tapName } from "../node/src/network/Naming.ts"
import type { Slot } from "../node/src/network/NetworkSlot.ts"
import { describeMachine } from "./machine.ts"

const here = dirname(fileURLToPath(import.meta.url))
const checkpoints = [0, 64, 128, 256]
const samples = Number(process.env["PAWS_BENCH_FIREWALL_SAMPLES"] ?? 5)
const netns = `paws-b-${Math.random().toString(16).slice(2, 10)}`

const nft = (script: string) =>
  execFileSync("nsenter", [`--net=/run/netns/${netns}`, "nft", "-f", "-"], { input: script, stdio: "pipe" })
const timed = (f: () => void): number => {
  const t0 = performance.now()
  f()
  return performance.now() - t0
}
const median = (xs: ReadonlyArray<number>) => Math.round([...xs].sort((a, b) => a - b)[xs.length >> 1]! * 10) / 10

const slotOf = (i: number): Slot => {
  const sessionId = newSessionId()
  const base = 4 * i
  const ip = (n: number) => `10.200.${Math.floor(n / 256)}.${n % 256}`
  return {
    index: i,
    sessionId,
    tap: tapName(sessionId),
    hostIp: ip(base + 1),
    guestIp: ip(base + 2),
    prefixLength: 30,
    hostMac: "02:00:00:00:00:01",
    guestMac: "52:54:00:00:00:02",
  }
}
const portsOf = (i: number) => ({ https: 40_000 + i, http: 41_000 + i, dnsUdp: 42_000 + i, dnsTcp: 43_000 + i })

/** Today's design: one table per session, put in isolated, then swapped open; deleted at the end. */
const perSessionTable = {
  start: (slot: Slot) => {
    nft(renderRuleset(slot, undefined))
    nft(`flush table inet ${tableName(slot.sessionId)}\n${renderRuleset(slot, portsOf(slot.index))}`)
  },
  end: (slot: Slot) => nft(`delete table inet ${tableName(slot.sessionId)}\n`),
}

const sharedRuleset = `table inet paws_bench_node {
  map dnat_tcp { type ifname . inet_service : ipv4_addr . inet_service; }
  map dnat_udp { type ifname . inet_service : ipv4_addr . inet_service; }
  set accept_tcp { type ifname . ipv4_addr . ipv4_addr . inet_service; }
  set accept_udp { type ifname . ipv4_addr . ipv4_addr . inet_service; }
  set guest_src { type ifname . ipv4_addr; }
  set taps { type ifname; }
  chain guest_dnat {
    type nat hook prerouting priority dstnat; policy accept;
    dnat ip to iifname . tcp dport map @dnat_tcp
    dnat ip to iifname . udp dport map @dnat_udp
  }
  chain guest_input {
    type filter hook input priority filter; policy accept;
    iifname . ip saddr @guest_src ct state established,related accept
    iifname . ip saddr . ip daddr . tcp dport @accept_tcp ct status dnat accept
    iifname . ip saddr . ip daddr . udp dport @accept_udp ct status dnat accept
    iifname @taps counter drop
  }
  chain guest_forward {
    type filter hook forward priority filter; policy accept;
    iifname @taps counter drop
    oifname @taps counter drop
  }
}
`
/** The sketch: a session is elements of the node's one table. */
const sharedTable = {
  elements: (verb: "add" | "delete", slot: Slot) => {
    const p = portsOf(slot.index)
    const t = `"${slot.tap}"`
    const h = slot.hostIp
    const g = slot.guestIp
    return [
      `${verb} element inet paws_bench_node taps { ${t} }`,
      `${verb} element inet paws_bench_node guest_src { ${t} . ${g} }`,
      `${verb} element inet paws_bench_node dnat_tcp { ${t} . 443 : ${h} . ${p.https}, ${t} . 80 : ${h} . ${p.http}, ${t} . 53 : ${h} . ${p.dnsTcp} }`,
      `${verb} element inet paws_bench_node dnat_udp { ${t} . 53 : ${h} . ${p.dnsUdp} }`,
      `${verb} element inet paws_bench_node accept_tcp { ${t} . ${g} . ${h} . ${p.https}, ${t} . ${g} . ${h} . ${p.http}, ${t} . ${g} . ${h} . ${p.dnsTcp} }`,
      `${verb} element inet paws_bench_node accept_udp { ${t} . ${g} . ${h} . ${p.dnsUdp} }`,
    ].join("\n") + "\n"
  },
  start: (slot: Slot) => nft(sharedTable.elements("add", slot)),
  end: (slot: Slot) => nft(sharedTable.elements("delete", slot)),
}

const measure = (design: { start: (s: Slot) => void; end: (s: Slot) => void }, setup?: () => void) => {
  if (setup !== undefined) setup()
  const rows: Array<{ sessions: number; startMs: number; endMs: number }> = []
  let present = 0
  for (const target of checkpoints) {
    for (; present < target; present++) design.start(slotOf(present))
    const probes = Array.from({ length: samples }, (_, k) => slotOf(10_000 + k))
    const starts = probes.map((s) => timed(() => design.start(s)))
    const ends = probes.map((s) => timed(() => design.end(s)))
    rows.push({ sessions: target, startMs: median(starts), endMs: median(ends) })
    console.log(JSON.stringify(rows.at(-1)))
  }
  return rows
}

const main = () => {
  const loadAtStart = loadavg()
  execFileSync("ip", ["netns", "add", netns])
  try {
    const perTable = measure(perSessionTable)
    nft("flush ruleset\n")
    const shared = measure(sharedTable, () => nft(sharedRuleset))
    const report = {
      time: new Date().toISOString(),
      machine: {
        ...describeMachine(loadAtStart),
        nft: execFileSync("nft", ["--version"], { encoding: "utf8" }).trim(),
      },
      settings: { checkpoints, samples },
      perSessionTable: perTable,
      sharedTable: shared,
    }
    const out = join(here, "results", `firewall-${report.time.replace(/[:.]/g, "-")}.json`)
    mkdirSync(dirname(out), { recursive: true })
    writeFileSync(out, JSON.stringify(report, null, 2) + "\n")
    console.log(JSON.stringify({ perSessionTable: perTable, sharedTable: shared, file: out }, null, 2))
  } finally {
    execFileSync("ip", ["netns", "del", netns])
  }
}

main()
