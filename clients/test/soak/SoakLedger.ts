// deno-lint-ignore-file no-explicit-any -- the soak reads loosely typed JSON replies
import { waitUntil } from "../support/WaitUntil.ts"
import { heldBy } from "./SoakProbe.ts"
import type { SoakStack } from "./SoakStack.ts"

export interface Checked {
  readonly id: string
  readonly kind: string
  readonly status: string
  readonly problem?: string
}

/** What the soak checked: each session's end state against what its fault should cause, and what it left behind. */
export const makeSoakLedger = (stack: SoakStack, log: (line: string) => void) => {
  const checked: Array<Checked> = []
  const heldAfterEnd: Array<string> = []
  const expect = async (id: string, kind: string, want: (s: any) => string | undefined, released = true) => {
    const s = await stack.finished(id)
    const problem = want(s)
    checked.push({ id, kind, status: s.status, ...(problem === undefined ? {} : { problem }) })
    log(`  ${kind} ${id}: ${s.status}${s.reason ? ` (${String(s.reason).slice(0, 120)})` : ""}`)
    if (problem !== undefined) log(`MISMATCH ${kind} ${id}: ${problem} (got ${JSON.stringify(s).slice(0, 400)})`)
    if (released) await released_(id, kind)
  }
  // A terminal session has released everything on its node (the node reports the end after teardown).
  const released_ = async (id: string, kind: string, ms = 15_000) => {
    const held = await waitUntil(
      `${id} released`,
      () => heldBy(stack.world.netns, stack.runRoot, id),
      (h) => h.length === 0,
      ms,
    )
      .catch(async () => await heldBy(stack.world.netns, stack.runRoot, id))
    if (held.length > 0) {
      heldAfterEnd.push(`${kind} ${id}: ${held.join(",")}`)
      log(`LEAK ${kind} ${id}: still holds ${held.join(",")}`)
    }
  }
  const is = (status: string, extra?: (s: any) => string | undefined) => (s: any) =>
    s.status !== status ? `want ${status}` : extra?.(s)
  return { checked, heldAfterEnd, expect, released: released_, is }
}
export type SoakLedger = ReturnType<typeof makeSoakLedger>
