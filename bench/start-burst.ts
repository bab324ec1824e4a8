/**
 * The burst part of `npm run bench:start` (PAWS_BENCH_START_BURST=N, default 0 = skipped): N
 * sessions of `sleep` submitted to a control plane at once, each polled until it is `running`.
 * Reports the time until all ran and each session's start time (POST → seen running) against how
 * many were already running when it got there, then cancels them all. The node's VM pool refills
 * in the background meanwhile; the poll interval (250 ms: listing 128 sessions costs control CPU the starts need) bounds the resolution.
 */
const ms = (x: number) => Math.round(x)
const percentile = (xs: ReadonlyArray<number>, p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN
}

interface Control {
  readonly base: string
  readonly headers: Record<string, string>
}

export interface BurstResult {
  readonly submitted: number
  readonly running: number
  /** From the first POST until the last session was seen running (or the deadline). */
  readonly allRunningMs: number | null
  readonly submitMs: number
  /** Start time (POST → seen running) p50/max for the sessions that found [from, to) running. */
  readonly startByAlreadyRunning: ReadonlyArray<{ from: number; to: number; n: number; p50: number; max: number }>
  readonly failures: ReadonlyArray<string>
  /** CPU spent per session from the first POST until all ran, by process (the bench polls control meanwhile). */
  readonly cpuMsPerSession: Record<string, number>
}

const listAll = async (control: Control) => {
  const all: Array<{ id: string; status: string }> = []
  let cursor: string | null = null
  do {
    const url: string = `${control.base}/v1/sessions?limit=200${cursor === null ? "" : `&cursor=${cursor}`}`
    const page = await fetch(url, { headers: control.headers }).then((r) => r.json()) as {
      sessions: Array<{ id: string; status: string }>
      nextCursor: string | null
    }
    all.push(...page.sessions)
    cursor = page.nextCursor
  } while (cursor !== null)
  return all
}

/** Why a session ended: its result's error, or its status reason. */
const reasonOf = (control: Control, id: string) =>
  fetch(`${control.base}/v1/sessions/${id}`, { headers: control.headers })
    .then((r) => r.json() as Promise<{ reason?: string | null; result?: { error?: string } | null }>)
    .then((s) => s.result?.error ?? s.reason ?? "no reason given", (e: Error) => e.message)

export const burst = async (
  control: Control,
  n: number,
  cpu: () => Record<string, number>,
  deadlineMs = 180_000,
): Promise<BurstResult> => {
  const cpuBefore = cpu()
  const t0 = performance.now()
  const posted = await Promise.all(Array.from({ length: n }, async () => {
    const res = await fetch(`${control.base}/v1/sessions`, {
      method: "POST",
      headers: control.headers,
      body: JSON.stringify({
        snapshot: "default",
        workload: { type: "script", script: "sleep 600" },
        timeoutMs: 600_000,
      }),
    })
    if (res.status !== 202) throw new Error(`burst POST: ${res.status} ${await res.text()}`)
    return ((await res.json()) as { sessionId: string }).sessionId
  }))
  const submitMs = performance.now() - t0
  const ids = new Set(posted)
  /** When each session was first seen running, and how many were running just before it. */
  const started = new Map<string, { at: number; before: number }>()
  const failures: Array<string> = []
  while (started.size + failures.length < n && performance.now() - t0 < deadlineMs) {
    const now = performance.now() - t0
    const before = started.size
    for (const s of await listAll(control)) {
      if (!ids.has(s.id) || started.has(s.id)) continue
      if (s.status === "running") started.set(s.id, { at: now, before })
      else if (!["pending", "starting"].includes(s.status)) {
        ids.delete(s.id)
        failures.push(`${s.id} ${s.status}: ${await reasonOf(control, s.id)}`)
      }
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  const allRunningMs = started.size === n ? Math.max(...[...started.values()].map((s) => s.at)) : null
  const cpuAfter = cpu()
  const cpuMsPerSession = Object.fromEntries(
    Object.entries(cpuAfter).map(([k, v]) => [k, Math.round(((v - (cpuBefore[k] ?? 0)) / n) * 10) / 10]),
  )
  await Promise.all(
    posted.map((id) =>
      fetch(`${control.base}/v1/sessions/${id}`, { method: "DELETE", headers: control.headers }).then(
        (r) => r.body?.cancel(),
        () => undefined,
      )
    ),
  )
  const rows = [...started.values()]
  const step = Math.max(1, Math.ceil(n / 8))
  const startByAlreadyRunning = []
  for (let from = 0; from < n; from += step) {
    const xs = rows.filter((r) => r.before >= from && r.before < from + step).map((r) => r.at)
    if (xs.length > 0) {
      startByAlreadyRunning.push({
        from,
        to: from + step,
        n: xs.length,
        p50: ms(percentile(xs, 50)),
        max: ms(Math.max(...xs)),
      })
    }
  }
  return {
    submitted: n,
    running: started.size,
    allRunningMs: allRunningMs === null ? null : ms(allRunningMs),
    submitMs: ms(submitMs),
    startByAlreadyRunning,
    failures,
    cpuMsPerSession,
  }
}
