import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Redacted } from "effect"
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { spawn } from "node:child_process"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import ssh2 from "ssh2"
import { connectGuestShell, shellQuote } from "../src/guest/GuestShell.ts"
import { NetnsDialer } from "../src/guest/NetnsDialer.ts"
import { NodeSshKey } from "../src/guest/NodeSshKey.ts"
import { runHostCommand } from "../src/HostCommand.ts"
import { makeNetns } from "./support/Netns.ts"

const keyIn = (dataDir: string) =>
  NodeSshKey.pipe(Effect.provide(NodeSshKey.layer.pipe(
    Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord({ PAWS_DATA_DIR: dataDir }))),
  )))

describe("NodeSshKey", () => {
  it.effect("creates one ed25519 key (0600), then keeps using it, also when created concurrently", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(path.join(os.tmpdir(), "paws-key-"))
      try {
        const keys = yield* Effect.all([keyIn(dir), keyIn(dir), keyIn(dir)], { concurrency: "unbounded" })
        assert.strictEqual(new Set(keys.map((k) => k.publicKey)).size, 1)
        const again = yield* keyIn(dir)
        assert.strictEqual(again.publicKey, keys[0]!.publicKey)
        assert.match(again.publicKey, /^ssh-ed25519 [A-Za-z0-9+/=]+ paws-node$/)
        assert.strictEqual(statSync(again.path).mode & 0o777, 0o600)
        assert.strictEqual(readFileSync(`${again.path}.pub`, "utf8").trim(), again.publicKey)
        const parsed = ssh2.utils.parseKey(Redacted.value(again.privateKey))
        assert.isFalse(parsed instanceof Error)
        assert.notInclude(String(again.privateKey), "PRIVATE KEY", "redacted when printed")
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }))
})

/** A one-line TCP server on 127.0.0.1:7070 (inside whatever netns runs it), announcing readiness. */
const listener = (greeting: string) =>
  `require("net").createServer((c) => c.end(${JSON.stringify(greeting)}))` +
  `.listen(7070, "127.0.0.1", () => console.log("ready"))`

describe("NetnsDialer", () => {
  it.live("dials inside the namespace and hands the socket back; refusals are DialErrors", () =>
    Effect.gen(function* () {
      const netns = yield* makeNetns()
      // a listener that exists only inside the namespace: 127.0.0.1 there is not ours
      const server = yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn("ip", ["netns", "exec", netns, process.execPath, "-e", listener(`hello from ${netns}\n`)], {
            stdio: ["ignore", "pipe", "inherit"],
          })
        ),
        (p) => Effect.sync(() => p.kill("SIGKILL")),
      )
      yield* Effect.promise(() => new Promise((r) => server.stdout!.once("data", r)))
      const dialer = yield* NetnsDialer.make(netns)
      const sock = yield* dialer.dial("127.0.0.1", 7070, 1000)
      const reply = yield* Effect.promise(() =>
        new Promise<string>((resolve) => {
          sock.once("data", (d) => resolve(d.toString()))
        })
      )
      sock.destroy()
      assert.strictEqual(reply, `hello from ${netns}\n`)
      const refused = yield* Effect.flip(dialer.dial("127.0.0.1", 7071, 1000))
      assert.include(refused.message, "ECONNREFUSED")
      // without a namespace it dials from here: a loopback listener of this process
      const local = net.createServer((c) => c.end("local\n"))
      yield* Effect.promise(() => new Promise<void>((r) => local.listen(0, "127.0.0.1", r)))
      const direct = yield* (yield* NetnsDialer.make(undefined)).dial(
        "127.0.0.1",
        (local.address() as net.AddressInfo).port,
        1000,
      )
      const localReply = yield* Effect.promise(() =>
        new Promise<string>((r) => direct.once("data", (d) => r(String(d))))
      )
      direct.destroy()
      local.close()
      assert.strictEqual(localReply, "local\n")
    }).pipe(Effect.scoped))

  it.live("a guest that does not accept SSH is GuestUnreachable once the ready timeout passes", () =>
    Effect.gen(function* () {
      const netns = yield* makeNetns()
      const dialer = yield* NetnsDialer.make(netns)
      yield* runHostCommand("ip", ["-n", netns, "addr", "add", "10.99.0.1/24", "dev", "lo"])
      const started = Date.now()
      const e = yield* Effect.flip(connectGuestShell({
        dialer,
        host: "10.99.0.1",
        hostKeyBlob: new Uint8Array(32),
        privateKey: Redacted.make("unused"),
        readyTimeoutMs: 1500,
      }))
      assert.strictEqual(e._tag, "GuestUnreachable")
      assert.isAtLeast(Date.now() - started, 1400)
      assert.isBelow(Date.now() - started, 5000)
    }).pipe(Effect.scoped))

  it("quotes shell words", () => {
    assert.strictEqual(shellQuote("a'b $c"), `'a'\\''b $c'`)
  })
})
