import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { connectGuestAgent } from "../src/guest/GuestAgent.ts"

// The node side of the agent's PTY channel (AgentPty over GuestAgent) against a scripted agent on
// a unix socket: what it sends, and how it routes the guest's `p`/`q` messages interleaved with an
// exec's frames. The real agent's shells (paws-pty.c) are tested in a VM by
// clients/test/e2e-live-pooled.test.ts.

/** A fake agent: records what the node sent; `reply` writes to the node. */
const fakeAgent = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ socketPath: string; server: net.Server; sent: () => string; reply: (s: string) => void }>(
      (resolve) => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paws-agent-pty-"))
        const socketPath = path.join(dir, "agent.sock")
        let sent = ""
        let peer: net.Socket | undefined
        const server = net.createServer((s) => {
          peer = s
          s.on("data", (d) => (sent += d.toString("latin1")))
        })
        server.listen(
          socketPath,
          () =>
            resolve({ socketPath, server, sent: () => sent, reply: (x) => void peer?.write(Buffer.from(x, "latin1")) }),
        )
      },
    )
  ),
  (a) => Effect.sync(() => a.server.close()),
)

const until = (ok: () => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 200 && !ok(); i++) yield* Effect.sleep(10)
    assert.isTrue(ok())
  })

describe("agent PTY channel (node side)", () => {
  it.live("opens, types, resizes and hangs up by id; output and the exit status are routed beside an exec", () =>
    Effect.scoped(Effect.gen(function* () {
      const fake = yield* fakeAgent
      const agent = yield* connectGuestAgent(fake.socketPath)
      const one = yield* agent.pty({ rows: 24, cols: 80 })
      const two = yield* agent.pty({ rows: 10, cols: 20 })
      yield* until(() => fake.sent().includes("pty 2 10 20\n"))
      assert.strictEqual(fake.sent(), "pty 1 24 80\npty 2 10 20\n")
      one.write(new TextEncoder().encode("ls\r"))
      two.resize({ rows: 30, cols: 100 })
      yield* until(() => fake.sent().endsWith("pwin 2 30 100\n"))
      assert.isTrue(fake.sent().includes("pin 1 3\nls\r"))

      // an exec runs while both shells stream: frames of all three arrive interleaved
      const exec = yield* Stream.runCollect(agent.exec("echo x")).pipe(Effect.forkChild)
      yield* until(() => fake.sent().includes("exec 6 0\necho x"))
      fake.reply("p 1 3\nab\np 2 2\nzzo 2\nx\np 1 1\ncq 2 s9\nx 0\nq 1 3\n")
      const ran = Array.from(yield* Fiber.join(exec))
      assert.deepStrictEqual(ran.map((e) => e._tag), ["Stdout", "Exit"])
      const text = (chunks: Iterable<Uint8Array>) => Array.from(chunks).map((c) => Buffer.from(c).toString()).join("")
      assert.strictEqual(text(yield* Stream.runCollect(one.output)), "ab\nc")
      assert.strictEqual(one.exitCode(), 3)
      assert.strictEqual(text(yield* Stream.runCollect(two.output)), "zz")
      assert.strictEqual(two.exitCode(), 128 + 9) // killed by SIGKILL, as a shell's $? says
    })))

  it.live("a shell closed by the node is hung up; one the guest cannot open says why; a forged frame size drops the agent", () =>
    Effect.scoped(Effect.gen(function* () {
      const fake = yield* fakeAgent
      const agent = yield* connectGuestAgent(fake.socketPath)
      yield* Effect.scoped(agent.pty({ rows: 5, cols: 5 }))
      yield* until(() => fake.sent().includes("pclose 1\n"))
      const refused = yield* agent.pty({ rows: 5, cols: 5 })
      fake.reply("q 2 fail too many shells\n")
      const said = Array.from(yield* Stream.runCollect(refused.output)).map((c) => Buffer.from(c).toString()).join("")
      assert.match(said, /could not open a shell: too many shells/)
      assert.isUndefined(refused.exitCode())
      const flooded = yield* agent.pty({ rows: 5, cols: 5 })
      fake.reply(`p 3 ${70_000}\n`)
      assert.strictEqual(Array.from(yield* Stream.runCollect(flooded.output)).length, 0)
      const after = yield* Effect.flip(agent.request("ping 1", 1_000))
      assert.match(after.message, /protocol violation: a frame of 70000 bytes/)
    })))
})
