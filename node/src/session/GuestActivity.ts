import { Effect, Stream } from "effect"

/**
 * Guest traffic per live session (exec, files, shells, forwarded ports): when it last had any,
 * and how many streams into its guest are open. The idle auto-pause reads `lastActive`.
 */
export const makeGuestActivity = () => {
  const activity = new Map<string, { at: number; open: number }>()
  return {
    begin: (sessionId: string) => void activity.set(sessionId, { at: Date.now(), open: 0 }),
    end: (sessionId: string) => void activity.delete(sessionId),
    touch: (sessionId: string) => {
      const a = activity.get(sessionId)
      if (a !== undefined) a.at = Date.now()
    },
    /** A stream into the guest counts as traffic for as long as it is open. */
    traffic: <A, E, R>(sessionId: string, stream: Stream.Stream<A, E, R>) =>
      Stream.ensuring(
        Stream.suspend(() => {
          const a = activity.get(sessionId)
          if (a !== undefined) (a.open++, a.at = Date.now())
          return stream
        }),
        Effect.sync(() => {
          const a = activity.get(sessionId)
          if (a !== undefined) (a.open = Math.max(0, a.open - 1), a.at = Date.now())
        }),
      ),
    /** Now while a stream is open (or the session is gone), else its last traffic. */
    lastActive: (sessionId: string) => () => {
      const a = activity.get(sessionId)
      return a === undefined || a.open > 0 ? Date.now() : a.at
    },
  }
}
