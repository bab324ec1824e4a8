/**
 * Cold-boot session, measured through the node's own lifecycle (LiveSessions → SessionRunner):
 * spec in → first workload command's output → teardown complete (the terminal status is
 * emitted only after every resource is released). Registered in bench/vm.ts `measurements`.
 */
import { Context, Effect, Layer, Stream } from "effect"
import type { Scope } from "effect"
import { newSessionId, type SessionDispatch } from "@paws/core"
import { NodeServices } from "../node/src/main.ts"
import { LiveSessions } from "../node/src/session/LiveSessions.ts"
import { testConfig } from "../node/test/support/TestImage.ts"
import type { VmBenchContext } from "./vm.ts"

const memoryMB = Number(process.env["PAWS_BENCH_VM_MEMORY_MB"] ?? 256)

export const coldBootSession = (
  ctx: VmBenchContext,
  runs: number,
): Effect.Effect<ReadonlyArray<Record<string, number | string>>, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const services = yield* Layer.build(NodeServices.pipe(Layer.provide(testConfig({
      PAWS_NODE_NETNS: ctx.netns,
      PAWS_NODE_TOKEN: "bench",
      // Beside the raw-boot measurement's tap0 (172.16.0.0/30).
      PAWS_NODE_POOL: "172.16.1.0/24",
    }))))
    const sessions = Context.get(services, LiveSessions)
    const rows: Array<Record<string, number | string>> = []
    for (let i = 0; i < runs; i++) {
      const dispatch: SessionDispatch = {
        sessionId: newSessionId(),
        snapshot: ctx.image.name,
        workload: { type: "script", script: "echo go" },
        resources: { vcpus: 1, memoryMB },
        timeoutMs: 60_000,
        network: { allowOut: [], credentials: {} },
      }
      const t0 = performance.now()
      let firstOutput = Number.NaN
      let status = "none"
      yield* sessions.run(dispatch).pipe(
        Stream.runForEach((e) =>
          Effect.sync(() => {
            if (e._tag === "output" && Number.isNaN(firstOutput)) firstOutput = performance.now() - t0
            if (e._tag === "status") status = e.status
          })
        ),
      )
      const total = performance.now() - t0
      if (status !== "completed") return yield* Effect.die(new Error(`bench session ended ${status}`))
      rows.push({ firstCommandMs: ms(firstOutput), teardownCompleteMs: ms(total) })
      yield* Effect.logInfo(
        `coldBootSession ${i + 1}/${runs}: first command ${ms(firstOutput)} ms, done ${ms(total)} ms`,
      )
    }
    return rows
  })

const ms = (x: number) => Math.round(x * 10) / 10
