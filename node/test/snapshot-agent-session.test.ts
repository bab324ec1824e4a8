import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { newSessionId } from "@paws/core"
import { buildAgentBinary } from "../src/guest/AgentBinary.ts"
import { installAgent } from "../src/guest/AgentInstall.ts"
import { connectGuestAgent } from "../src/guest/GuestAgent.ts"
import { connectGuestShell } from "../src/guest/GuestShell.ts"
import { NetnsDialer } from "../src/guest/NetnsDialer.ts"
import { NodeSshKey } from "../src/guest/NodeSshKey.ts"
import { ImageStore } from "../src/image/ImageStore.ts"
import { guestNetworkOf, NetworkSlot } from "../src/network/NetworkSlot.ts"
import { SnapshotBuilder } from "../src/snapshot/SnapshotBuilder.ts"
import { snapshotFiles } from "../src/snapshot/SnapshotManifest.ts"
import { tscArgs } from "../src/vmm/AccelProbe.ts"
import { snapshotCmdline } from "../src/vmm/MachineArgs.ts"
import { Vmm } from "../src/vmm/Vmm.ts"
import { assertNothingLeft, dispatchOf, runToEnd } from "./support/Sessions.ts"
import { testConfig } from "./support/TestImage.ts"
import { testNodeLayer } from "./support/TestNode.ts"

// A private snapshot dir: other test files keep cold-booting the shared test image.
const snapshotDir = fs.mkdtempSync(path.join(os.tmpdir(), "paws-agent-session-"))
const config = { PAWS_SNAPSHOT_DIR: snapshotDir }
const world = SnapshotBuilder.layerNoDeps.pipe(
  Layer.provide(testConfig(config)),
  Layer.provideMerge(testNodeLayer(config)),
  Layer.provideMerge(
    Layer.effectDiscard(
      Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(snapshotDir, { recursive: true, force: true }))),
    ),
  ),
)

// The snapshot's guest has no SSH server: its setup stops dropbear's listener (the build's own
// connection lives on until the pause). A session that dialled SSH could only fail.
const noSsh =
  "kill -KILL $(cat /run/dropbear.pid); while grep -q ' 00000000:0016 00000000:0000 0A' /proc/net/tcp; do sleep 0.1; done"
/** Whether anything listens on TCP port 22. */
const sshState = `grep -q ' 00000000:0016 00000000:0000 0A' /proc/net/tcp && echo sshd-up || echo sshd-down`

layer(world, { excludeTestServices: true, timeout: 240_000 })(
  "snapshot sessions over the guest agent (real VMs)",
  (it) => {
    it.effect("workload output, exit code and result arrive over the agent with no SSH server in the guest", () =>
      Effect.gen(function* () {
        yield* Effect.scoped(Effect.gen(function* () {
          const slot = yield* (yield* NetworkSlot).acquire(newSessionId())
          yield* (yield* SnapshotBuilder).build({
            name: "default",
            setup: `echo from-snapshot > /root/marker; ${noSsh}`,
            net: guestNetworkOf(slot),
          })
        }))
        const script = [
          "cat /root/marker",
          sshState,
          "printf 'to-stderr' >&2",
          `echo '{"answer":42}' > /output/result.json`,
          "printf 'no-newline'",
          "exit 3",
        ].join("\n")
        const { events, statuses, result } = yield* runToEnd(dispatchOf(script))
        assert.deepStrictEqual(statuses, ["starting", "running", "failed"], JSON.stringify(result))
        assert.strictEqual(result.stdout, "from-snapshot\nsshd-down\nno-newline")
        assert.strictEqual(result.stderr, "to-stderr")
        assert.strictEqual(result.exitCode, 3)
        assert.deepStrictEqual(result.output, { answer: 42 })
        const live = events.flatMap((e) => (e._tag === "output" ? [`${e.stream}:${e.data}`] : []))
        assert.include(live.join(""), "stdout:from-snapshot")
        assert.include(live, "stderr:to-stderr")

        // an env file over the inline limit (its own write), a script over 64 KiB on stdin, a
        // result that is not JSON
        const bigValue = "v".repeat(20_000)
        const bigScript = [
          `# ${"padding ".repeat(10_000)}`,
          sshState,
          `[ "$BIG" = "${bigValue}" ] && echo env-ok`,
          `echo "$GREETING"`,
          "echo 'not json' > /output/result.json",
        ].join("\n")
        const env = { BIG: bigValue, GREETING: `it's "quoted"` }
        const big = yield* runToEnd(dispatchOf(bigScript, { workload: { type: "script", script: bigScript, env } }))
        assert.deepStrictEqual(big.statuses, ["starting", "running", "completed"], JSON.stringify(big.result))
        assert.strictEqual(big.result.stdout, `sshd-down\nenv-ok\nit's "quoted"\n`)
        assert.strictEqual(big.result.output, null)
        assert.match(big.result.error ?? "", /result.json is not valid JSON/)

        // a workload killed by a signal (here its own): the session says which, not "exit code null"
        const killed = yield* runToEnd(dispatchOf("echo before; kill -KILL $$; echo after"))
        assert.deepStrictEqual(killed.statuses, ["starting", "running", "failed"], JSON.stringify(killed.result))
        assert.strictEqual(killed.result.stdout, "before\n")
        assert.strictEqual(killed.result.exitCode, null)
        assert.strictEqual(killed.result.error, "the workload was killed by signal KILL")
        const reasons = killed.events.flatMap((e) => (e._tag === "status" && e.reason !== undefined ? [e.reason] : []))
        assert.deepStrictEqual(reasons, ["the workload was killed by signal KILL"])

        // the deadline interrupts the exec; the VM goes with the session
        const slow = yield* runToEnd(dispatchOf(`${sshState}; sleep 60`, { timeoutMs: 4_000 }))
        assert.deepStrictEqual(slow.statuses, ["starting", "running", "timeout"], JSON.stringify(slow.result))
        assert.strictEqual(slow.result.stdout, "sshd-down\n")
        yield* assertNothingLeft
      }))

    // The agent waits for a host with its port open: were it to close the port between two looks,
    // the guest kernel would drop what a host sent in that moment, and that request would never
    // be answered (a snapshot build under load once waited 20 s for its ping so).
    it.effect("the guest agent answers the first request of every host that connects, whenever it connects", () =>
      Effect.gen(function* () {
        const vmm = yield* Vmm
        const image = yield* (yield* ImageStore).get()
        const key = yield* NodeSshKey
        const net = guestNetworkOf(yield* (yield* NetworkSlot).acquire(newSessionId()))
        const dir = fs.mkdtempSync(path.join(snapshotDir, "agent-hosts-"))
        const vm = yield* vmm.bootSource({
          sessionId: newSessionId(),
          dir,
          files: snapshotFiles,
          baseDisk: image.rootfsPath,
          spec: {
            accelerator: yield* vmm.accelerator(image.kernelPath),
            memoryMB: 256,
            vcpus: 1,
            kernelPath: image.kernelPath,
            initrdPath: image.initrdPath,
            cmdline: snapshotCmdline(tscArgs(), net),
            guestMac: net.guestMac,
          },
          tap: net.tap,
        })
        const shell = yield* connectGuestShell({
          dialer: yield* NetnsDialer,
          host: net.guestIp,
          hostKeyBlob: image.hostKeyBlob,
          privateKey: key.privateKey,
          readyTimeoutMs: 90_000,
        })
        yield* installAgent(shell, fs.readFileSync(yield* buildAgentBinary(path.join(snapshotDir, ".cache"))))
        // Hosts come and go at every phase of the agent's wait (it looks every 50 ms); each one's
        // first request is answered.
        for (let host = 0; host < 40; host++) {
          yield* Effect.sleep(`${(host * 7) % 60} millis`)
          const nonce = `${host}-${Math.random().toString(16).slice(2)}`
          const pong = yield* Effect.scoped(
            Effect.flatMap(connectGuestAgent(vm.controlPath), (agent) => agent.request(`ping ${nonce}`, 10_000)),
          )
          assert.strictEqual(pong, `pong ${nonce}`, `host ${host}`)
        }
      }).pipe(Effect.scoped))
  },
)
