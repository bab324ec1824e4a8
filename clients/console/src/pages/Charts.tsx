import { api, type NodeInfo, type Session } from "../api.ts"
import { BarChart } from "../Chart.tsx"
import { useLoad } from "../hooks.ts"
import { ErrorNote, Page } from "../ui.tsx"
import { histogram, perHour, utilisation } from "./chartData.ts"

const page = (cursor: string | null) =>
  api.GET("/v1/sessions", { params: { query: { limit: "100", ...(cursor === null ? {} : { cursor }) } } })

/** The newest sessions, up to `max`, following the API's cursor. */
const recentSessions = async (max: number): Promise<{ data?: ReadonlyArray<Session>; error?: unknown }> => {
  const all: Array<Session> = []
  let cursor: string | null = null
  do {
    const reply: Awaited<ReturnType<typeof page>> = await page(cursor)
    if (reply.error !== undefined) return { error: reply.error }
    all.push(...reply.data.sessions)
    cursor = reply.data.nextCursor
  } while (cursor !== null && all.length < max)
  return { data: all }
}

/** Pictures of the last 500 sessions: start-time and duration distributions, sessions per hour, node utilisation. */
export const Charts = () => {
  const sessions = useLoad(() => recentSessions(500), [], 10_000)
  const nodes = useLoad(() => api.GET("/v1/nodes"), [], 10_000)
  const list = sessions.data ?? []
  const startWaits = list.flatMap((
    s,
  ) => (s.startedAt === null ? [] : [Date.parse(s.startedAt) - Date.parse(s.createdAt)]))
  const durations = list.flatMap((s) => (s.durationMs === null ? [] : [s.durationMs]))
  const starts = histogram(startWaits)
  const lengths = histogram(durations)
  const hours = perHour(list, Date.now())
  const use = utilisation(nodes.data ?? ([] as ReadonlyArray<NodeInfo>), list, Date.now())
  return (
    <Page title="Charts">
      <ErrorNote error={sessions.error ?? nodes.error} />
      <p class="muted">From the newest {list.length} sessions.</p>
      <div class="charts">
        <BarChart
          title="Start time (queued → running)"
          labels={starts.labels}
          series={[{ label: "sessions", values: starts.counts, color: "#3867d6" }]}
        />
        <BarChart
          title="Session duration"
          labels={lengths.labels}
          series={[{ label: "sessions", values: lengths.counts, color: "#20bf6b" }]}
        />
        <BarChart
          title="Sessions per hour (last 24 h)"
          labels={hours.labels}
          series={[{ label: "created", values: hours.counts, color: "#8854d0" }]}
        />
        <BarChart
          title="Node utilisation"
          labels={use.labels}
          unit="%"
          series={[
            { label: "slots in use now", values: use.now, color: "#fa8231" },
            { label: "busy over 24 h", values: use.day, color: "#4b6584" },
          ]}
        />
      </div>
    </Page>
  )
}
