import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option, Scope, Stream } from "effect"
import { existsSync, readFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { connectGuestShell, GuestFileTooLarge } from "../src/guest/GuestShell.ts"
import type { GuestShell } from "../src/guest/GuestShell.ts"
import { NetnsDialer } from "../src/guest/NetnsDialer.ts"
import type { Dialer } from "../src/guest/NetnsDialer.ts"
import { NodeSshKey } from "../src/guest/NodeSshKey.ts"
import type { GuestImage } from "../src/image/GuestImage.ts"
import { ImageBuilder } from "../src/image/ImageBuilder.ts"
import { probeKvm } from "../src/vmm/AccelProbe.ts"
import { makeQemuMicrovm } from "../src/vmm/QemuMicrovm.ts"
import type { VmHandle } from "../src/vmm/Vmm.ts"
import { addTestTap, makeNetns } from "./support/Netns.ts"
import type { TestTap } from "./support/Netns.ts"
import { testImageLayer } from "./support/TestImage.ts"

const sessionId = () => `0190f000-0000-7000-8000-${Math.floor(Math.random() * 2 ** 40).toString(16).padStart(12, "0")}`

/** One booted VM shared by the tests below (a TCG boot costs seconds here). */
class TestVm extends Context.Service<TestVm, {
  readonly vm: VmHandle
  readonly shell: GuestShell
  readonly image: GuestImage
  readonly tap: TestTap
  readonly netns: string
  readonly dialer: Dialer
  readonly privateKey: NodeSshKey["Service"]["privateKey"]
  readonly vmm: Effect.Success<ReturnType<typeof makeQemuMicrovm>>
}>()("test/TestVm") {}

const TestVmLive = Layer.effect(
  TestVm,
  Effect.gen(function* () {
    const image = yield* (yield* ImageBuilder).build()
    const key = yield* NodeSshKey
    const netns = yield* makeNetns()
    const tap = yield* addTestTap(netns)
    const vmm = yield* makeQemuMicrovm({
      runDir: path.join(os.tmpdir(), "paws-test-run"),
      accel: "auto",
      netns,
    })
    const vm = yield* vmm.boot({
      sessionId: sessionId(),
      image,
      tap: tap.tap,
      guestMac: tap.guestMac,
      guestCidr: tap.guestCidr,
      gateway: tap.hostIp,
      dns: tap.hostIp,
      memoryMB: 256,
    })
    const dialer = yield* NetnsDialer.make(netns)
    const shell = yield* connectGuestShell({
      dialer,
      host: tap.guestIp,
      hostKeyBlob: image.hostKeyBlob,
      privateKey: key.privateKey,
      readyTimeoutMs: 60_000,
    }).pipe(Effect.tapError(() => Effect.flatMap(vm.console, (c) => Effect.logError(`guest console:\n${c}`))))
    return TestVm.of({ vm, shell, image, tap, netns, dialer, privateKey: key.privateKey, vmm })
  }),
).pipe(Layer.provide(testImageLayer()))

const text = (d: Uint8Array) => Buffer.from(d).toString("utf8")

layer(TestVmLive, { timeout: "180 seconds", excludeTestServices: true })("QEMU microvm + guest shell", (it) => {
  it.effect("runs QEMU named after the session, with the probed accelerator", () =>
    Effect.gen(function* () {
      const { vm, image, vmm } = yield* TestVm
      const argv = readFileSync(`/proc/${vm.pid}/cmdline`, "utf8").split("\0")
      assert.include(argv, `paws-${vm.sessionId}`)
      assert.include(vm.runDir, `vm-${vm.sessionId}`)
      assert.isTrue(existsSync(vm.overlayPath))
      // /dev/kvm exists on this machine but cannot run guests: the probe boot must notice
      const kvmWorks = yield* probeKvm(image.kernelPath)
      assert.strictEqual(vm.accelerator, kvmWorks ? "kvm" : "tcg")
      assert.strictEqual(yield* vmm.accelerator(image.kernelPath), vm.accelerator)
      assert.strictEqual(argv[argv.indexOf("-accel") + 1], vm.accelerator)
      // QEMU dropped root after setup
      assert.match(readFileSync(`/proc/${vm.pid}/status`, "utf8"), /^Uid:\s+65534\s/m)
      // Started through paws-nothp: no transparent huge pages (TCG's code buffer held 16 MiB in them)
      assert.match(readFileSync(`/proc/${vm.pid}/status`, "utf8"), /^THP_enabled:\s+0$/m)
      const status = (yield* vm.qmp("query-status")) as { status: string }
      assert.strictEqual(status.status, "running")
    }))

  it.effect("streams stdout and stderr as they happen, then the exit code", () =>
    Effect.gen(function* () {
      const { shell } = yield* TestVm
      const started = Date.now()
      const events = yield* shell.exec("echo out1; echo err1 >&2; sleep 1; echo out2; exit 7").pipe(
        Stream.map((e) => ({ ...e, at: Date.now() - started })),
        Stream.runCollect,
      )
      const out = events.filter((e) => e._tag === "Stdout").map((e) => text(e.data)).join("")
      const err = events.filter((e) => e._tag === "Stderr").map((e) => text(e.data)).join("")
      assert.strictEqual(out, "out1\nout2\n")
      assert.strictEqual(err, "err1\n")
      const last = events.at(-1)!
      assert.deepStrictEqual(last._tag === "Exit" && last.exitCode, 7)
      const first = events.find((e) => e._tag === "Stdout")!
      // out1 arrived a second before the command finished: streamed, not buffered
      assert.isBelow(first.at, last.at - 700)
    }))

  it.effect("passes env and stdin; runs several execs at once on the one connection", () =>
    Effect.gen(function* () {
      const { shell } = yield* TestVm
      const r = yield* shell.run(`cat; printf '%s' "$GREETING"`, { env: { GREETING: "it's $HOME" }, stdin: "in:" })
      assert.deepStrictEqual(r, { stdout: "in:it's $HOME", stderr: "", exitCode: 0 })
      const many = yield* Effect.all(
        [1, 2, 3, 4].map((n) => shell.run(`sleep 0.3; echo ${n}`)),
        { concurrency: "unbounded" },
      )
      assert.deepStrictEqual(many.map((m) => m.stdout), ["1\n", "2\n", "3\n", "4\n"])
      const path = yield* shell.run("echo $PATH; command -v git curl")
      assert.include(path.stdout, "/usr/bin/git")
    }))

  it.effect("a consumer that stops reading an exec stream ends the guest command", () =>
    Effect.gen(function* () {
      const { shell } = yield* TestVm
      const first = yield* shell.exec("sleep 4321 & echo started; exec sleep 1234").pipe(
        Stream.take(1),
        Stream.runCollect,
      )
      assert.strictEqual(first[0]?._tag === "Stdout" && text(first[0].data), "started\n")
      let left = ""
      for (let i = 0; i < 50; i++) {
        left = (yield* shell.run("ps | grep -E '[s]leep (1234|4321)' || true")).stdout
        if (left === "") break
        yield* Effect.sleep(100)
      }
      assert.strictEqual(left, "", "the command and its background child are gone")
      assert.strictEqual((yield* shell.run("echo still connected")).stdout, "still connected\n")
    }))

  it.effect("writes and reads files, binary-safe, with modes and size caps", () =>
    Effect.gen(function* () {
      const { shell } = yield* TestVm
      const bytes = new Uint8Array(70_000).map((_, i) => (i * 7) & 255)
      yield* shell.writeFile("/output/deep/blob.bin", bytes, { mode: 0o600 })
      const back = yield* shell.readFile("/output/deep/blob.bin", 100_000)
      assert.isTrue(Option.isSome(back) && Buffer.from(back.value).equals(Buffer.from(bytes)))
      assert.strictEqual((yield* shell.run("stat -c %a /output/deep/blob.bin")).stdout.trim(), "600")
      assert.isTrue(Option.isNone(yield* shell.readFile("/output/missing.json", 10)))
      const big = yield* Effect.flip(shell.readFile("/output/deep/blob.bin", 1000))
      assert.instanceOf(big, GuestFileTooLarge)
      assert.strictEqual((big as GuestFileTooLarge).bytes, 70_000)
      // the node appends the per-VM CA to the bundle and writes /etc/paws/ca.pem
      yield* shell.writeFile("/etc/ssl/certs/ca-certificates.crt", "# paws-test-ca\n", { append: true })
      yield* shell.writeFile("/etc/paws/ca.pem", "pem\n")
      const tail = yield* shell.run("tail -n 1 /etc/ssl/certs/ca-certificates.crt; cat /etc/paws/ca.pem")
      assert.strictEqual(tail.stdout, "# paws-test-ca\npem\n")
    }))

  it.effect("configures the guest network from the kernel command line and sets the clock", () =>
    Effect.gen(function* () {
      const { shell, tap } = yield* TestVm
      const net = yield* shell.run("ip -4 addr show eth0; ip route; cat /etc/resolv.conf")
      assert.include(net.stdout, `inet ${tap.guestCidr}`)
      assert.include(net.stdout, `default via ${tap.hostIp}`)
      assert.include(net.stdout, `nameserver ${tap.hostIp}`)
      const when = Date.UTC(2031, 0, 2, 3, 4, 5)
      yield* shell.setClock(when)
      const now = Number((yield* shell.run("date +%s")).stdout.trim())
      assert.isAtLeast(now, when / 1000)
      assert.isBelow(now, when / 1000 + 30)
      yield* shell.setClock()
    }))

  it.effect("rejects a guest whose host key is not the pinned one", () =>
    Effect.gen(function* () {
      const { dialer, tap, privateKey, image } = yield* TestVm
      const wrong = new Uint8Array(image.hostKeyBlob)
      wrong[wrong.length - 1]! ^= 1
      const started = Date.now()
      const result = yield* Effect.exit(Effect.scoped(
        connectGuestShell({ dialer, host: tap.guestIp, hostKeyBlob: wrong, privateKey, readyTimeoutMs: 20_000 }),
      ))
      assert.isTrue(Exit.isFailure(result))
      assert.include(String(result), "GuestHostKeyMismatch")
      assert.isBelow(Date.now() - started, 10_000, "a key mismatch is final, not retried until the deadline")
    }))

  it.effect("stop leaves no QEMU process, overlay or runtime dir", () =>
    Effect.gen(function* () {
      const { vmm, image, netns } = yield* TestVm
      // a second VM on a TAP of its own in the same netns; only QEMU's life matters here
      const tap = yield* addTestTap(netns, 1)
      const scope = yield* Scope.make()
      const vm = yield* vmm.boot({
        sessionId: sessionId(),
        image,
        tap: tap.tap,
        guestMac: tap.guestMac,
        guestCidr: tap.guestCidr,
        gateway: tap.hostIp,
      }).pipe(Scope.provide(scope))
      assert.isTrue(existsSync(`/proc/${vm.pid}`))
      assert.isTrue(existsSync(vm.overlayPath))
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(existsSync(`/proc/${vm.pid}`), "QEMU is gone")
      assert.isFalse(existsSync(vm.overlayPath), "overlay deleted")
      assert.isFalse(existsSync(vm.runDir), "runtime dir deleted")
    }))

  it.effect("a QEMU that no longer answers is SIGKILLed after the grace period", () =>
    Effect.gen(function* () {
      const { vmm, image, netns } = yield* TestVm
      const tap = yield* addTestTap(netns, 2)
      const scope = yield* Scope.make()
      const vm = yield* vmm.boot({
        sessionId: sessionId(),
        image,
        tap: tap.tap,
        guestMac: tap.guestMac,
        guestCidr: tap.guestCidr,
        gateway: tap.hostIp,
      }).pipe(Scope.provide(scope))
      process.kill(vm.pid, "SIGSTOP") // wedged: QMP quit goes unanswered
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(existsSync(`/proc/${vm.pid}`), "QEMU is gone")
      assert.isFalse(existsSync(vm.runDir), "runtime dir deleted")
      assert.isBelow(Date.now() - started, 10_000)
    }))
})

describe("QEMU microvm start failures", () => {
  it.live(
    "a kernel QEMU cannot load is a VmStartError with QEMU's reason, and cleans up",
    () =>
      Effect.gen(function* () {
        const image = yield* (yield* ImageBuilder).build()
        const netns = yield* makeNetns()
        const runDir = path.join(os.tmpdir(), "paws-test-run")
        const vmm = yield* makeQemuMicrovm({ runDir, accel: "tcg", netns })
        const id = sessionId()
        const tap = yield* addTestTap(netns)
        const failed = yield* Effect.flip(Effect.scoped(vmm.boot({
          sessionId: id,
          image: { ...image, kernelPath: "/nonexistent/vmlinuz" },
          tap: tap.tap,
          guestMac: "52:54:00:00:00:02",
          guestCidr: "172.16.0.2/30",
          gateway: "172.16.0.1",
        })))
        assert.strictEqual(failed._tag, "VmStartError")
        assert.include(failed.detail ?? "", "/nonexistent/vmlinuz")
        assert.isFalse(existsSync(path.join(runDir, `vm-${id}`)))
      }).pipe(Effect.scoped, Effect.provide(testImageLayer())),
    { timeout: 120_000 },
  )

  it.live(
    "values that would be spliced into QEMU options are refused before anything starts",
    () =>
      Effect.gen(function* () {
        const image = yield* (yield* ImageBuilder).build()
        const runDir = path.join(os.tmpdir(), "paws-test-run")
        const vmm = yield* makeQemuMicrovm({ runDir, accel: "tcg", netns: undefined })
        const good = {
          sessionId: sessionId(),
          image,
          tap: "tap0",
          guestMac: "52:54:00:00:00:02",
          guestCidr: "172.16.0.2/30",
          gateway: "172.16.0.1",
        }
        const bad = [
          { sessionId: "../../etc" },
          { tap: "tap0,script=/bin/sh" },
          { guestMac: "52:54:00:00:00:02,romfile=x" },
          { dns: "1.1.1.1 init=/bin/sh" },
        ]
        for (const b of bad) {
          const e = yield* Effect.flip(Effect.scoped(vmm.boot({ ...good, ...b })))
          assert.strictEqual(e._tag, "VmStartError")
        }
        const long = yield* makeQemuMicrovm({ runDir: `/tmp/${"x".repeat(80)}`, accel: "tcg", netns: undefined })
        const e = yield* Effect.flip(Effect.scoped(long.boot(good)))
        assert.include(e.message, "too long")
        assert.isFalse(existsSync(path.join(runDir, `vm-${good.sessionId}`)))
      }).pipe(Effect.provide(testImageLayer())),
    { timeout: 120_000 },
  )
})
