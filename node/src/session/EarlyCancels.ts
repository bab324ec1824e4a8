/**
 * Sessions cancelled before they reached this node (control cancels a session it has just
 * dispatched: the cancel may overtake its RunSession). Their dispatch, should it still arrive, is
 * refused instead of run. A mark lapses after `keepMs`, as such a dispatch would have come by then.
 */
export const makeEarlyCancels = (keepMs = 120_000) => {
  const marks = new Map<string, number>()
  return {
    mark: (sessionId: string) => void marks.set(sessionId, Date.now()),
    /** Whether the session was cancelled early (the mark goes: it is acted on once); old marks lapse. */
    take: (sessionId: string): boolean => {
      const now = Date.now()
      for (const [id, at] of marks) if (now - at > keepMs) marks.delete(id)
      return marks.delete(sessionId)
    },
    forget: (sessionId: string) => void marks.delete(sessionId),
  }
}
