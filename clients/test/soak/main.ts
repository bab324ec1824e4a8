import { runSoak } from "./Soak.ts"

// `npm run soak` (root): PAWS_SOAK_SESSIONS (default 200), PAWS_SOAK_MAX_MINUTES (default 20),
// PAWS_SOAK_SEED (default: random, printed). Exits non-zero on any mismatch, leak or abort.
const sessions = Number(process.env.PAWS_SOAK_SESSIONS ?? 200)
const maxMinutes = Number(process.env.PAWS_SOAK_MAX_MINUTES ?? 20)
const seed = Number(process.env.PAWS_SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31))
console.log(`soak seed ${seed} (rerun with PAWS_SOAK_SEED=${seed})`)

const report = await runSoak({ sessions, maxMinutes, seed, log: (line) => console.log(line) })
const { leaks, ...rest } = report
console.log(JSON.stringify(
  {
    ...rest,
    leaksByKind: Object.fromEntries(Object.entries(leaks).map(([k, v]) => [k, (v as Array<unknown>).length])),
    leaks,
  },
  null,
  2,
))
const bad = report.mismatches.length + report.heldAfterEnd.length + report.leakTotal + (report.error ? 1 : 0)
console.log(
  `soak: ${report.sessions} sessions, ${report.mismatches.length} mismatches, ${report.heldAfterEnd.length} held after end, ${report.leakTotal} leaks${
    report.error ? ", aborted" : ""
  }`,
)
process.exit(bad === 0 ? 0 : 1)
