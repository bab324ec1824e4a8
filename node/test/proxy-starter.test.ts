import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Option, Scope } from "effect"
import { readFileSync } from "node:fs"
import type { ProxyAuditEvent } from "@paws/core"
import { proxyLoader } from "@paws/proxy/ProxyBundleBuild"
import { HostCommand } from "../src/HostCommand.ts"
import { labelledProcesses } from "../src/network/Reconciler.ts"
import { NodeConfig } from "../src/NodeConfig.ts"
import { ProxyStarter } from "../src/proxy/ProxyStarter.ts"
import { assertUnprivileged } from "./support/ProxyPrivileges.ts"
import { hostCommandIn, sh, testNetns } from "./support/TestNet.ts"

const sessionId = "0190f000-0000-7000-8000-0000000000aa"

describe("ProxyStarter.direct", () => {
  it.live("starts the proxy in the netns, returns its CA and ports, streams audit, stops it on release", () =>
    Effect.scoped(Effect.gen(function* () {
      const ns = yield* testNetns("px")
      yield* sh(["ip", "-n", ns, "tuntap", "add", "dev", "pwtest", "mode", "tap"])
      yield* sh(["ip", "-n", ns, "addr", "add", "10.79.0.1/30", "dev", "pwtest"])
      yield* sh(["ip", "-n", ns, "link", "set", "pwtest", "up"])
      const supervisor = yield* ProxyStarter.pipe(
        Effect.provide(ProxyStarter.direct.pipe(
          Layer.provide(Layer.succeed(HostCommand, hostCommandIn(ns))),
          Layer.provide(NodeConfig.layerWith({ netns: Option.some(ns) })),
        )),
      )
      const audits: Array<ProxyAuditEvent> = []
      const scope = yield* Scope.make()
      const proxy = yield* supervisor.start({
        sessionId,
        hostIp: "10.79.0.1",
        allowOut: ["allowed.example"],
        credentials: {},
        onAudit: (e) => audits.push(e),
      }).pipe(Scope.provide(scope))
      assert.match(proxy.caCertificatePem, /^-----BEGIN CERTIFICATE-----/)
      assert.isAbove(proxy.ports.https, 0)
      const running = yield* labelledProcesses(Option.some(ns))
      assert.deepStrictEqual(running.map((p) => p.sessionId), [sessionId])
      assert.deepStrictEqual(running.map((p) => p.pid), [proxy.pid], "the spawned process is the proxy itself")
      // Only the node is root: the proxy has its own uid, no capabilities, no_new_privs, a private /tmp.
      assertUnprivileged(proxy.pid)
      // ... and runs from the proxy's bundle, which the starter built (rolldown is installed here).
      const cmdline = readFileSync(`/proc/${proxy.pid}/cmdline`, "utf8").split("\0").filter((a) => a !== "")
      assert.include(cmdline, proxyLoader)
      assert.match(cmdline.at(-1)!, /\/proxy-[0-9a-f]{16}\.cjs$/)

      // A name off the allowlist is refused over the proxy's real TLS port, and audited.
      const out = yield* sh([
        "ip",
        "netns",
        "exec",
        ns,
        "curl",
        "-sk",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        "--resolve",
        `denied.example:${proxy.ports.https}:10.79.0.1`,
        `https://denied.example:${proxy.ports.https}/`,
      ]).pipe(Effect.catch(() => Effect.succeed("refused")))
      assert.notStrictEqual(out, "200")
      assert.match(out, /^\d{3}$/, "the unprivileged proxy answered over TLS")
      yield* Effect.sleep("200 millis")
      assert.isTrue(
        audits.some((a) => a.host === "denied.example" && a.decision === "denied_host"),
        JSON.stringify(audits),
      )

      yield* Scope.close(scope, Exit.void)
      assert.isTrue(Deferred.isDoneUnsafe(proxy.exited))
      assert.deepStrictEqual(yield* labelledProcesses(Option.some(ns)), [])
    })))
})
