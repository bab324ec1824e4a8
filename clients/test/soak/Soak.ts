import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { ImageBuilder } from "../../../node/src/image/ImageBuilder.ts"
import { testImageLayer } from "../../../node/test/support/TestImage.ts"
import { paws } from "../support/CliProcess.ts"
import { makeE2eWorld } from "../support/E2eWorld.ts"
import { waitUntil } from "../support/WaitUntil.ts"
import { makeSoakFaults } from "./SoakFaults.ts"
import type { Checked } from "./SoakLedger.ts"
import { makeSoakLedger } from "./SoakLedger.ts"
import { allKinds, exclusiveKinds, type Kind, makePlan, prng } from "./SoakPlan.ts"
import { leakCount, type Leaks, leaks } from "./SoakProbe.ts"
import { makeSoakStack } from "./SoakStack.ts"

export interface SoakOptions {
  readonly sessions: number
  readonly maxMinutes: number
  readonly seed: number
  readonly log: (line: string) => void
}

export interface SoakReport {
  readonly seed: number
  readonly sessions: number
  readonly byOutcome: Record<string, number>
  readonly byKind: Record<string, number>
  readonly mismatches: ReadonlyArray<Checked>
  readonly heldAfterEnd: ReadonlyArray<string>
  readonly leaks: Leaks
  readonly leakTotal: number
  readonly stoppedEarly: boolean
  readonly error?: string
  readonly ms: number
}

/** Runs the planned faults against a real control and node until the target or the time cap, then counts leaks. */
export const runSoak = async (options: SoakOptions): Promise<SoakReport> => {
  const t0 = Date.now()
  const deadline = t0 + options.maxMinutes * 60_000
  const random = prng(options.seed)
  const log = options.log
  await Effect.runPromise(ImageBuilder.use((b) => b.build()).pipe(Effect.provide(testImageLayer()), Effect.orDie))
  const world = await makeE2eWorld()
  const stack = await makeSoakStack(world)
  const ledger = makeSoakLedger(stack, log)
  const { checked, heldAfterEnd } = ledger
  const { shared, exclusive } = makeSoakFaults(stack, ledger, random, log)
  const { runRoot, url } = stack

  const plan = makePlan(options.sessions, random)
  let stoppedEarly = false
  let error: string | undefined
  try {
    await stack.startControl()
    const key = readFileSync(join(world.dir, "control", "admin.key"), "utf8").trim()
    const created = await paws(["nodes", "token", "create", "--name", "soak"], {
      PAWS_URL: url,
      PAWS_API_KEY: key,
      PAWS_CONFIG: join(world.dir, "none.json"),
    })
    if (created.code !== 0) throw new Error(`node token: ${created.stderr}`)
    stack.setCredentials(key, created.stdout.trim())
    await stack.startNode()
    log(`soak: seed ${options.seed}, target ${options.sessions} sessions, cap ${options.maxMinutes} min`)
    let i = 0
    while (i < plan.length && (checked.length < options.sessions || i < allKinds)) {
      if (Date.now() > deadline) {
        stoppedEarly = true
        log(`soak: time cap reached after ${checked.length} sessions`)
        break
      }
      const kind = plan[i++]!
      if ((exclusiveKinds as ReadonlyArray<string>).includes(kind)) {
        await exclusive(kind)
      } else {
        const next = plan[i]
        const pair: Array<Kind> = [kind]
        if (next !== undefined && !(exclusiveKinds as ReadonlyArray<string>).includes(next)) pair.push(plan[i++]!)
        await Promise.all(pair.map(shared))
      }
      log(
        `soak: ${checked.length} sessions, ${checked.filter((c) => c.problem).length} mismatches, ${
          Math.round((Date.now() - t0) / 1000)
        } s`,
      )
    }
  } catch (e) {
    error = (e as Error).stack ?? String(e)
    log(`soak: aborted: ${error}`)
  } finally {
    // Stop everything, then count what is left: nothing may remain, not even the warm pool.
    await stack.node()?.kill("SIGTERM")
    await stack.control()?.kill("SIGTERM")
  }
  const left = await waitUntil("teardown", () => leaks(world.netns, runRoot), (l) => leakCount(l) === 0, 10_000)
    .catch(() => leaks(world.netns, runRoot))
  await world.close()
  const count = (key: (c: Checked) => string) =>
    checked.reduce<Record<string, number>>((acc, c) => ((acc[key(c)] = (acc[key(c)] ?? 0) + 1), acc), {})
  return {
    seed: options.seed,
    sessions: checked.length,
    byOutcome: count((c) => c.status),
    byKind: count((c) => c.kind),
    mismatches: checked.filter((c) => c.problem !== undefined),
    heldAfterEnd,
    leaks: left,
    leakTotal: leakCount(left),
    stoppedEarly,
    ...(error === undefined ? {} : { error }),
    ms: Date.now() - t0,
  }
}
