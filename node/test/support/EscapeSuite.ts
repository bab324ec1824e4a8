import { assert, layer } from "@effect/vitest"
import { Effect, Exit } from "effect"
import type { Layer } from "effect"
import { existsSync } from "node:fs"
import { LiveSessions } from "../../src/session/LiveSessions.ts"
import { baitLink } from "./EscapeWorld.ts"
import { assertNothingLeft } from "./Sessions.ts"
import { linksIn } from "./TestNet.ts"
import { TestWorld } from "./TestNode.ts"
import {
  attempt,
  bait,
  canary,
  dropped,
  hitsOf,
  httpStatus,
  proxiedPorts,
  results,
  run,
  slow,
  tally,
} from "./EscapeRun.ts"
import { networkChecks } from "./EscapeNetworkChecks.ts"
import { proxyChecks } from "./EscapeProxyChecks.ts"
import { secretChecks } from "./EscapeSecretChecks.ts"
import type { Vitest } from "@effect/vitest"

/** The `it` the checks register their tests with. */
export type EscapeIt = Vitest.MethodsNonLive<LiveSessions | TestWorld>

/**
 * The escape suite against the VMs `world` starts: one shared run per test file (vitest gives
 * each file its own module state), then one test per way out.
 */
export const escapeSuite = (
  title: string,
  world: Layer.Layer<LiveSessions | TestWorld, unknown>,
  restored: boolean,
) =>
  layer(world, {
    excludeTestServices: true,
    timeout: 360_000,
  })(title, (it) => {
    it.effect(
      "probe controls: the guest's allowed paths work and every bait answers from the host side",
      () =>
        Effect.gen(function* () {
          const r = yield* results
          assert.deepStrictEqual(
            r.statuses,
            ["starting", "running", "completed"],
            `${r.ending}\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-3000)}`,
          )
          assert.strictEqual(httpStatus(attempt(r, "ctl-https-api")), "200", attempt(r, "ctl-https-api").detail)
          const ctl = r.received.find((x) => x.url === "/ctl")
          assert.strictEqual(ctl?.headers["x-api-key"], canary, "the credential is injected on the allowed path")
          assert.include(attempt(r, "ctl-dns-api").detail, r.gw)
          assert.match(r.gw, /^172\.16\.0\.\d+$/)
          for (const [i, b] of bait.filter((b) => !(b.proto === "udp" && b.ip === "::")).entries()) {
            assert.strictEqual(r.controlAnswers[i], b.tag, `host-side control of ${b.tag}`)
          }
          assert.isAbove(r.controlHits.filter((h) => h.tag === "fake-dns-udp").length, 0, "the fake DNS hears a lookup")
          assert.strictEqual(r.bGuestListener, "b-guest", "VM B's listener answers the host")
          assert.strictEqual(r.bRestored, restored, restored ? "VMs are restored clones" : "VMs are cold-booted")
        }),
      slow,
    )

    for (const b of bait) {
      const viaProxy = b.proto === "tcp" && proxiedPorts.has(b.port) && !b.ip.includes(":")
      if (viaProxy) continue // port 80/443/53 over IPv4 reach the proxy: tests below
      it.effect(
        `blocks ${b.what} (${b.proto} ${b.ip}:${b.port}) at every address the guest can name`,
        () =>
          Effect.gen(function* () {
            const r = yield* results
            const names = [...r.targets.tcp, ...r.targets.udp].filter((t) => t.name.startsWith(`${b.tag}@`))
            assert.isAbove(names.length, 0, `no attempt aimed at ${b.tag}`)
            for (const t of names) {
              if (b.proto === "tcp" && t.host.startsWith("[")) {
                assert.include(["28", "7"], attempt(r, t.name).code, t.name) // see the IPv6 test below
                tally.blocked.add(t.name)
              } else if (b.proto === "tcp") dropped(r, t.name)
              else {
                const a = attempt(r, t.name)
                assert.notStrictEqual(a.code, "0", `${t.name}: ${a.detail}`)
                assert.notInclude(a.detail, b.tag)
                tally.blocked.add(t.name)
              }
            }
            assert.deepStrictEqual(hitsOf(r, b.tag), [], `${b.tag} was reached`)
          }),
        slow,
      )
    }

    networkChecks(it)
    proxyChecks(it)
    secretChecks(it)

    it.effect("leaves nothing behind (TAPs, tables, QEMU, proxies, bait)", () =>
      Effect.gen(function* () {
        const world = yield* TestWorld
        yield* results
        yield* assertNothingLeft
        assert.notInclude(yield* linksIn(world.netns), baitLink)
        assert.isFalse(existsSync(`/etc/netns/${world.netns}`))
        const unblocked = [...tally.attempts].filter((n) => !tally.blocked.has(n) && !n.startsWith("ctl-"))
        console.log(
          `escape suite: ${tally.blocked.size} escape attempts blocked of ${
            [...tally.attempts].filter((n) => !n.startsWith("ctl-")).length
          } tried (${run && Exit.isSuccess(run) ? run.value.attempts.size : 0} probe lines); not blocked: ${
            JSON.stringify(unblocked)
          }`,
        )
      }), slow)
  })

export { escapeNodeConfig } from "./EscapeRun.ts"
