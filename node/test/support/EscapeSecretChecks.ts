import { assert } from "@effect/vitest"
import { Effect } from "effect"
import { needlesOf, scanText } from "./CanaryScan.ts"
import { attempt, canary, canaryB, results, slow, tally, visible } from "./EscapeRun.ts"
import type { EscapeIt } from "./EscapeSuite.ts"

/** Nothing worth stealing in the guest: no CA private key, no credential anywhere it can read. */
export const secretChecks = (it: EscapeIt) => {
  it.effect(
    "the guest holds the proxy CA's certificate but no private key anywhere on its disk",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        assert.strictEqual(attempt(r, "ctl-ca-cert-present").code, "1")
        const visibleFiles = attempt(r, "ctl-fs-visible")
        assert.include(visibleFiles.detail, "/root/visible.txt", "the file scan finds what is there")
        assert.strictEqual(attempt(r, "fs-private-key").code, "0", attempt(r, "fs-private-key").detail)
        tally.blocked.add("fs-private-key")
      }),
    slow,
  )

  it.effect(
    "the credential is nowhere the guest can read: env, files, /proc, processes, kernel cmdline, dmesg",
    () =>
      Effect.gen(function* () {
        const r = yield* results
        assert.strictEqual(attempt(r, "fs-canary").code, "0", attempt(r, "fs-canary").detail)
        // The dump covered what it claims (so absence means something) ...
        const dump = r.stdout.slice(r.stdout.indexOf("--- guest view ---"))
        assert.include(dump, "--- end ---")
        for (const marker of [`VISIBLE=${visible}`, "vm.ip=", "Linux version", "dropbear", "BEGIN CERTIFICATE"]) {
          assert.include(dump, marker)
        }
        // ... and holds neither VM's credential in any encoding.
        const findings = [canary, canaryB].flatMap((c) => scanText(r.stdout + r.stderr, needlesOf(c), "guest"))
        assert.deepStrictEqual(findings, [])
        tally.blocked.add("fs-canary")
      }),
    slow,
  )
}
