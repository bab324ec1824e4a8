import type { SessionSpec } from "./SessionSpec.ts"
import { workloadText } from "./SessionSpec.ts"
import { hostMatches } from "./HostPattern.ts"
import { credentialProblems } from "./CredentialPolicy.ts"

/** Configurable maxima (each at most the matching hard limit) and the defaults applied to a spec. */
export interface SessionLimits {
  readonly maxTimeoutMs: number
  readonly defaultTimeoutMs: number
  readonly maxVcpus: number
  readonly maxMemoryMB: number
  readonly maxScriptBytes: number
  readonly defaultVcpus: number
  readonly defaultMemoryMB: number
}

export const defaultSessionLimits: SessionLimits = {
  maxTimeoutMs: 60 * 60 * 1000,
  defaultTimeoutMs: 5 * 60 * 1000,
  maxVcpus: 4,
  maxMemoryMB: 4096,
  maxScriptBytes: 256 * 1024,
  defaultVcpus: 1,
  defaultMemoryMB: 256,
}

export interface FieldProblem {
  readonly path: string
  readonly message: string
}

const utf8Length = (s: string): number => new TextEncoder().encode(s).length

/**
 * Checks a schema-valid spec against configured limits and cross-field rules that a
 * schema cannot express. Returns every problem, each naming its field.
 */
export const sessionSpecProblems = (spec: SessionSpec, limits: SessionLimits): ReadonlyArray<FieldProblem> => {
  const problems: Array<FieldProblem> = []
  const workload = workloadText(spec.workload)
  const scriptBytes = utf8Length(workload.text)
  if (scriptBytes > limits.maxScriptBytes) {
    problems.push({
      path: workload.path,
      message: `is ${scriptBytes} bytes; the maximum is ${limits.maxScriptBytes}`,
    })
  }
  if (spec.workload.type === "agent") {
    const custom = spec.workload.agent === "custom"
    if (custom && spec.workload.command === undefined) {
      problems.push({ path: "workload.command", message: `is required for agent "custom" (the agent's argv)` })
    }
    if (!custom && spec.workload.command !== undefined) {
      problems.push({ path: "workload.command", message: `is only for agent "custom"` })
    }
  }
  if (spec.timeoutMs !== undefined && spec.timeoutMs > limits.maxTimeoutMs) {
    problems.push({ path: "timeoutMs", message: `must be at most ${limits.maxTimeoutMs}` })
  }
  if (spec.resources !== undefined) {
    if (spec.resources.vcpus > limits.maxVcpus) {
      problems.push({ path: "resources.vcpus", message: `must be at most ${limits.maxVcpus}` })
    }
    if (spec.resources.memoryMB > limits.maxMemoryMB) {
      problems.push({ path: "resources.memoryMB", message: `must be at most ${limits.maxMemoryMB}` })
    }
  }
  const allowOut = spec.network?.allowOut ?? []
  for (const host of Object.keys(spec.network?.credentials ?? {})) {
    // A credential for a host the session may not reach would never be used: say so.
    const covered = allowOut.some((p) => p.toLowerCase() === host.toLowerCase() || hostMatches(p, host))
    if (!covered) {
      problems.push({
        path: `network.credentials.${host}`,
        message: "names a host that is not in network.allowOut; add it there too",
      })
    }
  }
  problems.push(...credentialProblems(spec.network))
  return problems
}

/** The spec with defaults filled in, as stored and dispatched. */
export const withSessionDefaults = (spec: SessionSpec, limits: SessionLimits) => ({
  ...spec,
  snapshot: spec.snapshot ?? "default",
  resources: spec.resources ?? { vcpus: limits.defaultVcpus, memoryMB: limits.defaultMemoryMB },
  timeoutMs: spec.timeoutMs ?? limits.defaultTimeoutMs,
  network: spec.network ?? { allowOut: [] },
})
