import { Effect, Option, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { HostCommand, runArgv } from "../../src/HostCommand.ts"

export const probeScript = fileURLToPath(new URL("./probe.ts", import.meta.url))

/** A uniquely named netns, deleted (with a check that nothing of ours remains) when the scope closes. */
export const testNetns = (label = "t"): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const name = `paws-${label}-${Math.random().toString(16).slice(2, 10)}`
      yield* runArgv(["ip", "netns", "add", name]).pipe(Effect.orDie)
      yield* runArgv(["ip", "-n", name, "link", "set", "lo", "up"]).pipe(Effect.orDie)
      return name
    }),
    (name) => runArgv(["ip", "netns", "del", name]).pipe(Effect.ignore),
  )

export const hostCommandIn = (netns: string) => HostCommand.make(Option.some(netns))

export const sh = (argv: ReadonlyArray<string>, stdin?: string) => runArgv(argv, stdin).pipe(Effect.orDie)

/** Starts a probe server in a netns; killed (by PID) with the scope. */
export const serve = (netns: string, proto: "tcp" | "udp", ip: string, port: number, tag: string) =>
  Effect.acquireRelease(
    Effect.callback<ChildProcess>((resume) => {
      const child = spawn("ip", [
        "netns",
        "exec",
        netns,
        process.execPath,
        probeScript,
        "serve",
        proto,
        ip,
        String(port),
        tag,
      ], {
        stdio: ["ignore", "pipe", "inherit"],
      })
      child.stdout!.once("data", () => resume(Effect.succeed(child)))
      child.once("exit", (code) => resume(Effect.die(new Error(`probe server exited ${code}`))))
    }),
    (child) => Effect.sync(() => child.kill("SIGKILL")),
  )

/**
 * A UDP flow the host keeps open from ip:port to peer:peerPort (a ping a second, so conntrack
 * holds it); `heard` collects every datagram that reaches the host's end. Killed with the scope.
 */
export const udpFlow = (netns: string, ip: string, port: number, peer: string, peerPort: number) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly child: ChildProcess; readonly heard: Array<string> }>((resume) => {
      const args = ["udp-keep", "udp", ip, String(port), peer, String(peerPort)]
      const child = spawn("ip", ["netns", "exec", netns, process.execPath, probeScript, ...args], {
        stdio: ["ignore", "pipe", "inherit"],
      })
      const heard: Array<string> = []
      let started = false
      createInterface({ input: child.stdout! }).on("line", (line) => {
        if (started) heard.push(line)
        else if (line === "flowing") (started = true, resume(Effect.succeed({ child, heard })))
      })
      child.once("exit", (code) => resume(Effect.die(new Error(`udp flow exited ${code}`))))
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL")),
  ).pipe(Effect.map(({ heard }) => heard))

/** What a client in `netns` gets back from ip:port ("BLOCKED" when nothing answers). */
export const probe = (netns: string, proto: "tcp" | "udp", ip: string, port: number) =>
  sh(["ip", "netns", "exec", netns, process.execPath, probeScript, "connect", proto, ip, String(port)]).pipe(
    Effect.map((s) => s.trim()),
  )

/** CONNECTED when a TCP handshake with ip:port completes from `netns` (even if the server then waits), else BLOCKED. */
export const reach = (netns: string, ip: string, port: number) =>
  sh(["ip", "netns", "exec", netns, process.execPath, probeScript, "reach", "tcp", ip, String(port)]).pipe(
    Effect.map((s) => s.trim()),
  )

/** Names of links / inet tables in a netns, for "nothing left behind" assertions. */
export const linksIn = (netns: string) =>
  sh(["ip", "-n", netns, "-j", "link", "show"]).pipe(
    Effect.map((out) => (JSON.parse(out) as ReadonlyArray<{ ifname: string }>).map((l) => l.ifname)),
  )
export const tablesIn = (netns: string) =>
  sh(["ip", "netns", "exec", netns, "nft", "-j", "list", "tables"]).pipe(
    Effect.map((out) =>
      (JSON.parse(out) as { nftables: ReadonlyArray<{ table?: { name: string } }> }).nftables.flatMap((e) =>
        e.table ? [e.table.name] : []
      )
    ),
  )
