/** How a workload's process ended: its exit code, or the signal that killed it (neither: no exit status came). */
export interface WorkloadEnd {
  readonly exitCode: number | null
  readonly signal: string | undefined
}

/** Why a workload that did not exit 0 by itself failed, in words for the session's reason and result. */
export const workloadEndError = (end: WorkloadEnd): string | undefined =>
  end.signal !== undefined
    ? `the workload was killed by signal ${end.signal}`
    : end.exitCode === null
    ? "the workload's output ended without an exit status"
    : undefined
