import { assert, layer } from "@effect/vitest"
import { Effect, Option, Stream } from "effect"
import { randomBytes } from "node:crypto"
import { newSessionId } from "@paws/core"
import { connectGuestShell } from "../src/guest/GuestShell.ts"
import type { ExecEvent } from "../src/guest/GuestShell.ts"
import { NetnsDialer } from "../src/guest/NetnsDialer.ts"
import { NodeSshKey } from "../src/guest/NodeSshKey.ts"
import { guestNetworkOf, NetworkSlot } from "../src/network/NetworkSlot.ts"
import { agentShell } from "../src/guest/AgentShell.ts"
import type { GuestAgent } from "../src/guest/GuestAgent.ts"
import { SnapshotBuilder } from "../src/snapshot/SnapshotBuilder.ts"
import { SnapshotRestore } from "../src/snapshot/SnapshotRestore.ts"
import { SnapshotStore } from "../src/snapshot/SnapshotStore.ts"
import { snapshotWorldLayer } from "./support/SnapshotWorld.ts"

/** Every event of one exec, with its arrival time. */
const collect = (agent: GuestAgent, command: string, stdin?: Uint8Array) =>
  agent.exec(command, stdin === undefined ? {} : { stdin }).pipe(
    Stream.map((event) => ({ event, at: performance.now() })),
    Stream.runCollect,
    Effect.map((all) => {
      const events = Array.from(all)
      const bytes = (tag: ExecEvent["_tag"]) =>
        Buffer.concat(events.flatMap(({ event }) => (event._tag === tag && event._tag !== "Exit" ? [event.data] : [])))
      const exits = events.filter(({ event }) => event._tag === "Exit")
      assert.strictEqual(exits.length, 1)
      assert.strictEqual(events.at(-1)!.event._tag, "Exit") // nothing after the exit
      return { events, stdout: bytes("Stdout"), stderr: bytes("Stderr"), exit: exits[0]!.event as ExecEvent }
    }),
  )

const setup = Effect.gen(function* () {
  yield* Effect.scoped(Effect.gen(function* () {
    const slot = yield* (yield* NetworkSlot).acquire(newSessionId())
    yield* (yield* SnapshotBuilder).build({
      name: "agent-exec",
      image: "default",
      net: guestNetworkOf(slot),
    })
  }))
  const snapshot = Option.getOrThrow(yield* (yield* SnapshotStore).find("agent-exec"))
  const sessionId = newSessionId()
  const slot = yield* (yield* NetworkSlot).acquire(sessionId)
  const restored = yield* (yield* SnapshotRestore).restore(snapshot, {
    sessionId,
    tap: slot.tap,
    guestCidr: `${slot.guestIp}/${slot.prefixLength}`,
    gateway: slot.hostIp,
    dns: slot.hostIp,
  })
  return { ...restored, slot, snapshot }
})

layer(snapshotWorldLayer, { excludeTestServices: true, timeout: 240_000 })("guest agent exec (real VM)", (it) => {
  it.effect("streams stdout and stderr separately and byte-exact, passes exit codes and signals, is interruptible, and matches an SSH exec", () =>
    Effect.gen(function* () {
      const { agent, slot, snapshot } = yield* setup

      // 3 MiB of random bytes in through stdin, out on stdout while 1 MiB of it goes to stderr
      // concurrently: the streams must come back unmixed and identical.
      const data = randomBytes(3 * 1024 * 1024)
      const t0 = performance.now()
      const big = yield* collect(
        agent,
        "cat > /tmp/in && { cat /tmp/in & head -c 1048576 /tmp/in >&2; wait; printf end >&2; exit 0; }",
        data,
      )
      yield* Effect.logInfo(`3 MiB in, 4 MiB out over the agent: ${Math.round(performance.now() - t0)} ms`)
      assert.isTrue(big.stdout.equals(data), `stdout: ${big.stdout.length} bytes`)
      assert.isTrue(big.stderr.equals(Buffer.concat([data.subarray(0, 1048576), Buffer.from("end")])))
      assert.deepStrictEqual(big.exit, { _tag: "Exit", exitCode: 0, signal: undefined })

      const exact = yield* collect(agent, "printf 'a\\nb'; printf '\\000\\377x' >&2")
      assert.deepStrictEqual([...exact.stdout], [...Buffer.from("a\nb")])
      assert.deepStrictEqual([...exact.stderr], [0, 255, 120])

      const code = (cmd: string) => collect(agent, cmd).pipe(Effect.map((r) => r.exit))
      assert.deepStrictEqual(yield* code("exit 3"), { _tag: "Exit", exitCode: 3, signal: undefined })
      assert.deepStrictEqual(yield* code("true"), { _tag: "Exit", exitCode: 0, signal: undefined })
      assert.deepStrictEqual(yield* code("kill -KILL $$"), { _tag: "Exit", exitCode: null, signal: "KILL" })
      assert.deepStrictEqual(yield* code("kill -TERM $$"), { _tag: "Exit", exitCode: null, signal: "TERM" })

      // live: the first line arrives while the command still runs
      const live = yield* collect(agent, "echo first; sleep 1.5; echo second >&2")
      const first = live.events.find(({ event }) => event._tag === "Stdout")!
      const second = live.events.find(({ event }) => event._tag === "Stderr")!
      assert.isAbove(second.at - first.at, 1000)
      assert.strictEqual(live.stdout.toString(), "first\n")

      // abandoned mid-run: its process group is killed, the agent answers the next exec at once
      const started = yield* agent.exec("echo started; exec sleep 60").pipe(Stream.take(1), Stream.runCollect)
      assert.strictEqual(Buffer.from((Array.from(started)[0] as { data: Uint8Array }).data).toString(), "started\n")
      const t1 = performance.now()
      const sleeping = yield* collect(
        agent,
        'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = sleep ] && echo $p; done; true',
      )
      assert.strictEqual(sleeping.stdout.toString(), "")
      assert.isBelow(performance.now() - t1, 5000)

      // a command over execve's single-argument limit is refused, not truncated
      const tooLong = yield* Effect.flip(collect(agent, `echo ${"x".repeat(140_000)}`))
      assert.include(tooLong.message, "too long")

      // the shell over the agent: files (binary, capped) and an environment like SSH's
      const shell = agentShell(agent)
      const blob = randomBytes(5000)
      yield* shell.writeFile("/tmp/blob", blob, { mode: 0o600 })
      assert.isTrue(Buffer.from(Option.getOrThrow(yield* shell.readFile("/tmp/blob", 5000))).equals(blob))
      const over = yield* Effect.flip(shell.readFile("/tmp/blob", 4999))
      assert.strictEqual(over._tag, "GuestFileTooLarge")
      assert.deepStrictEqual(over._tag === "GuestFileTooLarge" && [over.bytes, over.maxBytes], [5000, 4999])
      assert.isTrue(Option.isNone(yield* shell.readFile("/tmp/no-such-file", 10)))
      // the agent's own writes (no process): parents created, mode set, append keeps the mode
      yield* agent.writeFile("/tmp/new/dir/f", "ab", { mode: 0o640 })
      yield* agent.writeFile("/tmp/new/dir/f", "cd", { append: true, mode: 0o777 })
      yield* agent.mkdir("/tmp/made/deep")
      yield* shell.writeFile("/tmp/with space", "spaced") // not a plain path: through an exec
      const files = yield* shell.run(
        "stat -c '%a %s %n' /tmp/new/dir/f /tmp/made/deep '/tmp/with space'; cat /tmp/new/dir/f",
      )
      assert.strictEqual(files.stdout, "640 4 /tmp/new/dir/f\n755 40 /tmp/made/deep\n644 6 /tmp/with space\nabcd")
      // a batch: one round trip, answered in order; a failing step is named, the others still
      // applied, and the channel stays in step for the next request
      yield* agent.batch([
        { _tag: "mkdir", path: "/tmp/batch" },
        { _tag: "write", path: "/tmp/batch/a", contents: "1", mode: 0o600 },
        { _tag: "write", path: "/tmp/batch/a", contents: "2", append: true },
      ])
      const badBatch = yield* Effect.flip(agent.batch([
        { _tag: "write", path: "/tmp/batch/b", contents: "b" },
        { _tag: "write", path: "/tmp/batch/a/under-a-file", contents: "x" },
        { _tag: "mkdir", path: "/tmp/batch/a/also-under-a-file" },
        { _tag: "write", path: "/tmp/batch/c", contents: "c" },
      ]))
      assert.strictEqual(badBatch.message, "agent write /tmp/batch/a/under-a-file: fail open failed")
      const unplain = yield* Effect.flip(agent.batch([
        { _tag: "write", path: "/tmp/batch/d", contents: "d" },
        { _tag: "write", path: "/tmp/batch/with space", contents: "x" },
      ]))
      assert.include(unplain.message, "unsupported path")
      const batched = yield* shell.run("stat -c '%a %s %n' /tmp/batch/*; cat /tmp/batch/a /tmp/batch/b /tmp/batch/c")
      assert.strictEqual(batched.stdout, "600 2 /tmp/batch/a\n644 1 /tmp/batch/b\n644 1 /tmp/batch/c\n12bc")
      const envCmd =
        "pwd; umask; env | grep -v '^SSH_' | sort; grep -E '^Sig(Ign|Blk)' /proc/self/status; ls /proc/self/fd | wc -l"
      const overAgent = yield* shell.run(envCmd)
      const ssh = yield* connectGuestShell({
        dialer: yield* NetnsDialer,
        host: slot.guestIp,
        hostKeyBlob: snapshot.image.hostKeyBlob,
        privateKey: (yield* NodeSshKey).privateKey,
        readyTimeoutMs: 20_000,
      })
      const overSsh = yield* ssh.run(envCmd)
      assert.strictEqual(overAgent.stdout, overSsh.stdout)
      assert.include(overAgent.stdout, "HOME=/root")

      // agent exec vs SSH exec on the same guest
      const timed = <A, E>(eff: Effect.Effect<A, E>) =>
        Effect.gen(function* () {
          const t = performance.now()
          yield* eff
          return performance.now() - t
        })
      const viaAgent = yield* timed(shell.run("true", { profile: false }))
      const viaSsh = yield* timed(ssh.run("true", { profile: false }))
      yield* Effect.logInfo(`one exec: agent ${Math.round(viaAgent)} ms, ssh ${Math.round(viaSsh)} ms`)

      // a root workload can kill the agent and speak on the port itself: a frame it claims to be
      // huge is a protocol violation that ends the channel, never an allocation on the node
      const forged = yield* Effect.flip(collect(
        agent,
        [
          'for p in /sys/class/virtio-ports/*; do [ "$(cat $p/name)" = paws.ctl ] && dev=/dev/${p##*/}; done',
          "kill -KILL $PPID; sleep 0.3; exec 3<>$dev",
          "printf 'o 99999999999\\n' >&3; head -c 300000 /dev/zero >&3; sleep 5",
        ].join("\n"),
      ))
      assert.include(forged.message, "agent protocol violation: a frame of 99999999999 bytes")
    }).pipe(Effect.scoped))
})
