// Runs real core code under Deno so that Deno compatibility cannot silently rot.
// Prints one JSON line that the smoke test checks.
import { Schema } from "effect"
import { chooseNode } from "../src/Scheduler.ts"
import { SessionSpec } from "../src/SessionSpec.ts"
import { newSessionId } from "../src/Ids.ts"
import { defaultSessionLimits, sessionSpecProblems } from "../src/SessionLimits.ts"
import { NodeRpcs } from "../src/NodeRpc.ts"

const spec = Schema.decodeUnknownSync(SessionSpec)({
  workload: { type: "script", script: "echo hi" },
  network: {
    allowOut: ["api.example.com"],
    credentials: { "api.example.com": { headers: { "x-api-key": "sk-deno-smoke" } } },
  },
})
const bad = Schema.decodeUnknownExit(SessionSpec)({
  workload: { type: "script", script: "x" },
  network: { allowOut: ["10.0.0.1"] },
})
const chosen = chooseNode([
  { id: "b", name: "b", status: "ready", labels: {}, capacity: { maxConcurrent: 4, running: 0, available: 4 } },
  { id: "a", name: "a", status: "ready", labels: {}, capacity: { maxConcurrent: 4, running: 0, available: 4 } },
] as never)
console.log(JSON.stringify({
  runtime: typeof (globalThis as { Deno?: unknown }).Deno === "object" ? "deno" : "other",
  id: newSessionId(),
  problems: sessionSpecProblems(spec, defaultSessionLimits).length,
  badRejected: bad._tag === "Failure",
  chosen: chosen?.id,
  rpcs: [...NodeRpcs.requests.keys()].sort(),
}))
