import { Effect } from "effect"
import type { Scope } from "effect"
import { spawn } from "node:child_process"
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { sh } from "./TestNet.ts"

/** Host-side bait: a listener the guest must never reach. */
export interface BaitSpec {
  readonly proto: "tcp" | "udp"
  readonly ip: string
  readonly port: number
  readonly tag: string
}

export interface Hit {
  readonly tag: string
  readonly proto: "tcp" | "udp"
  readonly from: string
}

const child = fileURLToPath(new URL("./EscapeListenerChild.ts", import.meta.url))

/** Starts every bait listener inside `netns`; `hits` fills as anything reaches one. Killed (by PID) with the scope. */
export const startBait = (
  netns: string,
  specs: ReadonlyArray<BaitSpec>,
): Effect.Effect<{ readonly hits: Array<Hit> }, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<{ hits: Array<Hit>; kill: () => void }>((resume) => {
      const proc = spawn("ip", ["netns", "exec", netns, process.execPath, child], {
        stdio: ["pipe", "pipe", "inherit"],
      })
      const hits: Array<Hit> = []
      proc.stdin!.write(JSON.stringify(specs) + "\n")
      createInterface({ input: proc.stdout! }).on("line", (line) => {
        const msg = JSON.parse(line) as { ready?: boolean; hit?: Hit }
        if (msg.hit) hits.push(msg.hit)
        else resume(Effect.succeed({ hits, kill: () => proc.kill("SIGKILL") }))
      })
      proc.once("exit", (code) => resume(Effect.die(new Error(`bait listeners exited ${code}`))))
    }),
    (b) => Effect.sync(b.kill),
  )

/** Name of the link carrying the extra host addresses (no `pw` prefix: not a session TAP). */
export const baitLink = "escbait0"
export const baitAddresses = {
  /** "Another local address": where a control API or database might listen on a real host. */
  other: "10.77.0.1",
  metadata: "169.254.169.254",
  v6: "fd77::1",
} as const

/** Extra local addresses (on a veth) in the node's netns (other services, cloud metadata, IPv6); removed with the scope. */
export const addBaitAddresses = (netns: string) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      // A veth pair (no dummy driver on every kernel); both ends up so the addresses are live.
      yield* sh(["ip", "-n", netns, "link", "add", baitLink, "type", "veth", "peer", "name", `${baitLink}p`])
      yield* sh(["ip", "-n", netns, "link", "set", `${baitLink}p`, "up"])
      yield* sh(["ip", "-n", netns, "addr", "add", `${baitAddresses.other}/24`, "dev", baitLink])
      yield* sh(["ip", "-n", netns, "addr", "add", `${baitAddresses.metadata}/32`, "dev", baitLink])
      yield* sh(["ip", "-n", netns, "-6", "addr", "add", `${baitAddresses.v6}/64`, "dev", baitLink, "nodad"])
      yield* sh(["ip", "-n", netns, "link", "set", baitLink, "up"])
    }),
    () => sh(["ip", "-n", netns, "link", "del", baitLink]).pipe(Effect.ignore),
  )

/**
 * Points every process later started with `ip netns exec NETNS` (the proxies among them) at a
 * resolver on 127.0.0.1 in the netns: a fake DNS server there would see any query a proxy
 * forwarded or recursed. Removed with the scope.
 */
export const resolvConfIn = (netns: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = `/etc/netns/${netns}`
      mkdirSync(dir, { recursive: true })
      writeFileSync(`${dir}/resolv.conf`, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
      return dir
    }),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true })),
  )

export interface Listening {
  readonly proto: "tcp" | "udp"
  readonly address: string
  readonly port: number
}

/** Every listening TCP socket and bound UDP socket in the netns (`ss`). */
export const listeningIn = (netns: string): Effect.Effect<ReadonlyArray<Listening>> =>
  sh(["ip", "netns", "exec", netns, "ss", "-Hlntu"]).pipe(
    Effect.map((out) =>
      out.split("\n").filter((l) => l.trim() !== "").map((l) => {
        const cols = l.trim().split(/\s+/)
        const local = cols[4]!
        const i = local.lastIndexOf(":")
        return {
          proto: cols[0] === "udp" ? "udp" : "tcp",
          address: local.slice(0, i).replace(/^\[|\]$/g, "").replace(/%.*$/, ""),
          port: Number(local.slice(i + 1)),
        } as const
      })
    ),
  )
