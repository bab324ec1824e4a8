import { Data, Effect } from "effect"
import type { Scope } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { runHostCommand } from "../image/HostCommand.ts"
import { controlPortName } from "./SnapshotMachine.ts"

export class GuestAgentError extends Data.TaggedError("GuestAgentError")<{ readonly message: string }> {}

/** Guest paths of the agent; /run is tmpfs, so they live in the snapshot's RAM, not in the image. */
export const agentPath = "/run/paws/agent"
export const restoreHelperPath = "/run/paws/paws-restore"

/**
 * The guest side: a busybox sh loop on the virtio-serial port. A port opens once (EBUSY
 * otherwise), hence one read-write fd; read returns EOF while no host is connected, hence the
 * reopen loop. `restore` runs right after a clone resumes: one paws-restore process sets the
 * clock, reseeds the CRNG and moves the guest to the clone's own address, gateway and resolver (a
 * snapshot carries its source's); no fork beyond it, as every new process is slow right after resume. `run`
 * executes a base64 script and answers `done <exit> <base64 output>` (a command channel without
 * an SSH handshake; measured against SSH by bench:start).
 */
export const agentScript = `#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
dev=
for p in /sys/class/virtio-ports/*; do [ "$(cat "$p/name" 2>/dev/null)" = ${controlPortName} ] && dev=/dev/\${p##*/}; done
[ -n "$dev" ] || { echo "paws agent: no ${controlPortName} port" >/dev/ttyS0; exit 1; }
while :; do
  exec 3<>"$dev"
  while read -r cmd a b c d e <&3; do
    case $cmd in
    ping) echo "pong $a" >&3 ;;
    restore)
      if ${restoreHelperPath} "$a" "$b" "\${c%/*}" "\${c#*/}" "$d" "$e" 2>/run/paws/restore.err; then
        echo "ok" >&3
      else
        echo "fail $(tr '\\n' ' ' </run/paws/restore.err)" >&3
      fi ;;
    run)
      out=$(echo "$a" | base64 -d | sh 2>&1)
      echo "done $? $(printf %s "$out" | base64 | tr -d '\n')" >&3 ;;
    *) echo "fail unknown command $cmd" >&3 ;;
    esac
  done
  exec 3<&-
  sleep 0.05
done
`

const helperSource = fileURLToPath(new URL("./paws-restore.c", import.meta.url))

/** Compiles the static, libc-free guest helper once per source version (needs gcc on the node). */
export const buildRestoreHelper = (cacheDir: string): Effect.Effect<string, GuestAgentError> =>
  Effect.gen(function* () {
    const source = yield* Effect.promise(() => fs.readFile(helperSource))
    const out = path.join(cacheDir, `paws-restore-${createHash("sha256").update(source).digest("hex").slice(0, 16)}`)
    const exists = yield* Effect.promise(() => fs.access(out).then(() => true, () => false))
    if (exists) return out
    yield* Effect.promise(() => fs.mkdir(cacheDir, { recursive: true }))
    const tmp = `${out}.${randomBytes(4).toString("hex")}`
    yield* runHostCommand("gcc", [
      ...["-Os", "-static", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-fno-pie", "-no-pie", "-s"],
      ...["-o", tmp, helperSource],
    ]).pipe(Effect.mapError((e) => new GuestAgentError({ message: `gcc paws-restore.c failed: ${e.stderr}` })))
    yield* Effect.promise(() => fs.rename(tmp, out))
    return out
  })

/** The host side of the control port: one line out, one line back. */
export interface GuestAgent {
  readonly request: (line: string, timeoutMs: number) => Effect.Effect<string, GuestAgentError>
}

/** Runs a script through the agent; output is stdout and stderr together. */
export const agentRun = (agent: GuestAgent, script: string, timeoutMs: number) =>
  agent.request(`run ${Buffer.from(script).toString("base64")}`, timeoutMs).pipe(
    Effect.flatMap((reply) => {
      const m = /^done (\d+) ?(.*)$/.exec(reply)
      return m
        ? Effect.succeed({ exitCode: Number(m[1]), output: Buffer.from(m[2] ?? "", "base64").toString("utf8") })
        : Effect.fail(new GuestAgentError({ message: `agent run: ${reply}` }))
    }),
  )

/** Connects to QEMU's chardev socket for the port; closed with the scope. */
export const connectGuestAgent = (socketPath: string): Effect.Effect<GuestAgent, GuestAgentError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.createConnection(socketPath)
          s.once("connect", () => resolve(s))
          s.once("error", reject)
        }),
      catch: (e) => new GuestAgentError({ message: `agent socket ${socketPath}: ${(e as Error).message}` }),
    }),
    (s) => Effect.sync(() => s.destroy()),
  ).pipe(Effect.map((socket) => {
    let buffer = ""
    const lines: Array<string> = []
    const waiters: Array<(line: string | Error) => void> = []
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => {
      buffer += chunk
      let nl: number
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        const w = waiters.shift()
        if (w) w(line)
        else lines.push(line)
      }
    })
    const closed = (e: Error) => {
      for (const w of waiters.splice(0)) w(e)
    }
    socket.on("error", closed)
    socket.on("close", () => closed(new Error("agent connection closed")))
    const request = (line: string, timeoutMs: number) =>
      Effect.callback<string, GuestAgentError>((resume) => {
        lines.length = 0 // a stale answer (e.g. to a ping before a snapshot) is never this one's
        waiters.push((reply) =>
          resume(
            reply instanceof Error
              ? Effect.fail(new GuestAgentError({ message: reply.message }))
              : Effect.succeed(reply),
          )
        )
        socket.write(`${line}\n`)
      }).pipe(
        Effect.timeoutOrElse({
          duration: timeoutMs,
          orElse: () => Effect.fail(new GuestAgentError({ message: `agent: no answer in ${timeoutMs} ms` })),
        }),
      )
    return { request }
  }))
