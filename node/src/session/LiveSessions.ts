import { Context, Deferred, Effect, Layer, Stream } from "effect"
import {
  type ExecChunk,
  LiveSessionError,
  NodeAtCapacity,
  type NodeSessionEvent,
  NodeSessionNotFound,
  type PortSocketMessage,
  SessionAlreadyRunning,
  type SessionDispatch,
  SessionNotPausable,
  type UnknownSnapshot,
} from "@paws/core"
import * as path from "node:path"
import { dataDirConfig } from "../image/GuestImage.ts"
import { makePausedVms } from "./PausedVms.ts"
import type { PauseHolder } from "./SessionPauses.ts"
import { ImageStore } from "../image/ImageStore.ts"
import { SnapshotStore } from "../snapshot/SnapshotStore.ts"
import { NodeConfig } from "../NodeConfig.ts"
import { NetnsDialer } from "../guest/NetnsDialer.ts"
import type { TerminalSize } from "../guest/GuestShell.ts"
import type { ForwardChunk, ForwardRequest } from "./PortForward.ts"
import { makeLiveGuestAccess } from "./LiveGuestAccess.ts"
import { makeGuestActivity } from "./GuestActivity.ts"
import { makeEarlyCancels } from "./EarlyCancels.ts"
import { makeSourceCheck } from "./SessionSource.ts"
import { SessionRunner } from "./SessionRunner.ts"
import { makeSessionFeed, type SessionFeed } from "./SessionFeed.ts"
import { NodeTeardown } from "../NodeTeardown.ts"

/** How long a stopping node waits for its sessions' final events after tearing their VMs down. */
const stopWaitMs = 5_000

/**
 * The node's live sessions: admission (capacity, duplicates, snapshot), the event stream of
 * each, and cancel. A session outlives its event stream for `PAWS_NODE_ADOPT_GRACE_MS`: if the
 * replica following it goes away, another may take it over (attach); else it is stopped.
 */
export class LiveSessions extends Context.Service<LiveSessions, {
  readonly run: (
    dispatch: SessionDispatch,
  ) => Stream.Stream<NodeSessionEvent, NodeAtCapacity | SessionAlreadyRunning | UnknownSnapshot | NodeSessionNotFound>
  /** Follows a session whose dispatching replica went away (see SessionFeed). */
  readonly attach: (sessionId: string) => Stream.Stream<NodeSessionEvent, NodeSessionNotFound>
  readonly cancel: (sessionId: string) => Effect.Effect<void, NodeSessionNotFound>
  /** A human's decision on a request the session's proxy holds; false when its proxy is not running yet. */
  readonly decideEgress: (
    sessionId: string,
    requestId: string,
    approve: boolean,
  ) => Effect.Effect<boolean, NodeSessionNotFound>
  /**
   * Saves a live session's VM to this node's disk and releases it; its event stream then ends with
   * status `paused`. Resuming is `run` with `resume: true`.
   */
  readonly pause: (sessionId: string) => Effect.Effect<void, NodeSessionNotFound | SessionNotPausable>
  /** Sessions paused on this node's disk (kept across node restarts). */
  readonly pausedIds: Effect.Effect<ReadonlyArray<string>>
  readonly ids: Effect.Effect<ReadonlySet<string>>
  /**
   * The node is stopping: admits nothing more, tears every VM, TAP and table down in bulk
   * (NodeTeardown), then ends each live session `failed` with `reason`, its final events emitted.
   */
  readonly shutdown: (reason: string) => Effect.Effect<void>
  readonly capacity: Effect.Effect<
    { readonly maxConcurrent: number; readonly running: number; readonly basis: string }
  >
  /** Into a running session's guest (once its workload is running): exec, read and write files. */
  readonly exec: (
    sessionId: string,
    command: ReadonlyArray<string>,
    stdin: string | undefined,
  ) => Stream.Stream<ExecChunk, NodeSessionNotFound | LiveSessionError>
  readonly readFile: (
    sessionId: string,
    path: string,
  ) => Effect.Effect<Uint8Array, NodeSessionNotFound | LiveSessionError>
  readonly writeFile: (
    sessionId: string,
    path: string,
    data: Uint8Array,
  ) => Effect.Effect<void, NodeSessionNotFound | LiveSessionError>
  /** One HTTP request to a port of the session's guest (an exposed port), dialled from the node. */
  readonly forward: (
    sessionId: string,
    request: ForwardRequest,
  ) => Stream.Stream<ForwardChunk, NodeSessionNotFound | LiveSessionError>
  /** A WebSocket to an exposed guest port: its messages; `sendSocket` for the other way. */
  readonly openSocket: (
    sessionId: string,
    request: { readonly port: number; readonly socketId: string; readonly path: string; readonly cookie?: string },
  ) => Stream.Stream<PortSocketMessage, NodeSessionNotFound | LiveSessionError>
  readonly sendSocket: (socketId: string, message: PortSocketMessage) => Effect.Effect<void, LiveSessionError>
  /** An interactive shell on a PTY (`paws shell`): its output; `shellInput` for keys and resizes. */
  readonly openShell: (
    sessionId: string,
    shellId: string,
    size: TerminalSize,
  ) => Stream.Stream<{ readonly data: Uint8Array }, NodeSessionNotFound | LiveSessionError>
  readonly shellInput: (
    shellId: string,
    data: Uint8Array | undefined,
    resize: TerminalSize | undefined,
  ) => Effect.Effect<void, LiveSessionError>
}>()("paws/node/session/LiveSessions") {
  static readonly layer = Layer.effect(
    LiveSessions,
    Effect.gen(function* () {
      const { maxVms, capacityBasis, adoptGraceMs } = yield* NodeConfig
      const runner = yield* SessionRunner
      const images = yield* ImageStore
      const live = new Map<string, Deferred.Deferred<void>>()
      /** Each session's runner, done once it has released everything and emitted its last event. */
      const runners = new Map<string, Deferred.Deferred<void>>()
      const teardown = yield* Effect.serviceOption(NodeTeardown)
      let stopping: string | undefined
      const egress = new Map<string, { decide?: (requestId: string, approve: boolean) => void }>()
      const paused = makePausedVms(path.resolve(yield* dataDirConfig, "paused"))
      const pauses = new Map<string, PauseHolder>()
      const activity = makeGuestActivity()
      const guests = makeLiveGuestAccess((id) => live.has(id), activity, yield* Effect.serviceOption(NetnsDialer))
      const known = makeSourceCheck(images, yield* Effect.serviceOption(SnapshotStore))
      const cancelledEarly = makeEarlyCancels()
      const admit = (dispatch: SessionDispatch) =>
        Effect.gen(function* () {
          const id = dispatch.sessionId
          if (stopping !== undefined) return yield* new NodeAtCapacity({ message: `node is stopping: ${stopping}` })
          if (live.has(id)) {
            return yield* new SessionAlreadyRunning({ sessionId: id, message: `session ${id} is already running here` })
          }
          yield* known(dispatch.snapshot)
          if (live.size >= maxVms) {
            return yield* new NodeAtCapacity({ message: `node runs ${live.size} of ${maxVms} VMs` })
          }
          if (dispatch.resume === true && (yield* paused.read(id)) === undefined) {
            return yield* new SessionAlreadyRunning({ sessionId: id, message: `session ${id} is not paused here` })
          }
          // Checked in the same synchronous step as live.set: a cancel either finds the session live or
          // leaves its mark before it is admitted (the checks above took turns with other fibers).
          if (cancelledEarly.take(id)) {
            const message = `session ${id} was cancelled before it got here`
            return yield* new NodeSessionNotFound({ sessionId: id, message })
          }
          const cancel = Deferred.makeUnsafe<void>()
          live.set(id, cancel)
          return cancel
        })

      /** Each running session's events (and, for a while after it ends unfollowed, its last ones). */
      const feeds = new Map<string, SessionFeed>()
      const nodeScope = yield* Effect.scope
      /**
       * Admits the session and starts its runner in the node's own scope: it outlives the stream of the
       * replica that dispatched it, for a replica taking over to follow (AttachSession).
       */
      const start = (dispatch: SessionDispatch) =>
        Effect.gen(function* () {
          const id = dispatch.sessionId
          const cancel = yield* admit(dispatch)
          const done = Deferred.makeUnsafe<void>()
          const feed: SessionFeed = makeSessionFeed(
            adoptGraceMs,
            Effect.suspend(() => {
              if (feeds.get(id) !== feed) return Effect.void
              // Gone from here at once: a replica asking later finds nothing and fails the session itself.
              feeds.delete(id)
              if (live.get(id) !== cancel) return Effect.void
              // Nobody took it over: stop it, as a node cut off from control must.
              Deferred.doneUnsafe(cancel, Effect.void)
              return Effect.logInfo(`session ${id}: no control replica follows it; stopping it`).pipe(
                Effect.andThen(Deferred.await(done)),
              )
            }),
          )
          feeds.set(id, feed)
          const holder = {}
          egress.set(id, holder)
          const pause: PauseHolder = {}
          pauses.set(id, pause)
          activity.begin(id)
          runners.set(id, done)
          yield* runner.run(dispatch, feed.emit, cancel, holder, guests.onGuest, {
            holder: pause,
            lastActive: activity.lastActive(id),
          }, () => stopping).pipe(
            Effect.ensuring(Effect.sync(() => {
              live.delete(id)
              egress.delete(id)
              pauses.delete(id)
              activity.end(id)
              runners.delete(id)
              feed.end()
              Deferred.doneUnsafe(done, Effect.void)
            })),
            Effect.forkIn(nodeScope),
          )
          return feed
        })

      const run = (dispatch: SessionDispatch) =>
        Stream.unwrap(Effect.map(start(dispatch), (feed) => feed.follow(false)))

      return LiveSessions.of({
        run,
        attach: (sessionId) =>
          Stream.suspend(() => {
            const feed = feeds.get(sessionId)
            return feed === undefined
              ? Stream.fail(new NodeSessionNotFound({ sessionId, message: `session ${sessionId} is not held here` }))
              : feed.follow(true)
          }),
        cancel: (sessionId) =>
          Effect.suspend(() => {
            const cancel = live.get(sessionId)
            if (cancel !== undefined) return Deferred.succeed(cancel, undefined).pipe(Effect.asVoid)
            // Not live: its dispatch may still be on its way (the cancel overtook it). Marked in the step that found
            // it not live, so that admit refuses it. A paused session: cancelling it removes its saved VM.
            cancelledEarly.mark(sessionId)
            return Effect.flatMap(paused.read(sessionId), (m) =>
              m === undefined
                ? Effect.fail(new NodeSessionNotFound({ sessionId, message: `no live session ${sessionId}` }))
                : Effect.sync(() =>
                  cancelledEarly.forget(sessionId)
                ).pipe(Effect.andThen(paused.remove(sessionId))))
          }),
        decideEgress: (sessionId, requestId, approve) =>
          Effect.suspend(() => {
            const holder = egress.get(sessionId)
            if (holder === undefined) {
              return Effect.fail(new NodeSessionNotFound({ sessionId, message: `no live session ${sessionId}` }))
            }
            holder.decide?.(requestId, approve)
            return Effect.succeed(holder.decide !== undefined)
          }),
        pause: (sessionId) =>
          Effect.suspend((): Effect.Effect<void, NodeSessionNotFound | SessionNotPausable> => {
            const holder = pauses.get(sessionId)
            if (holder === undefined) {
              return Effect.fail(new NodeSessionNotFound({ sessionId, message: `no live session ${sessionId}` }))
            }
            if (holder.request === undefined) {
              return Effect.fail(
                new SessionNotPausable({
                  sessionId,
                  message: guests.hasGuest(sessionId)
                    ? "its script is still running; a live session (interactive, or keepAlive once its script is done) can be paused"
                    : "it is still starting",
                }),
              )
            }
            return holder.request
          }),
        // A resumed session's saved files stay (its disk backs onto them) until it ends: not paused.
        pausedIds: Effect.map(paused.list, (ids) => ids.filter((id) => !live.has(id))),
        ids: Effect.sync(() => new Set(live.keys())),
        shutdown: (reason) =>
          Effect.gen(function* () {
            stopping = reason
            const t0 = Date.now()
            const torn = teardown._tag === "Some" ? yield* teardown.value.teardownAll : undefined
            const waiting = [...runners.values()]
            for (const cancel of live.values()) Deferred.doneUnsafe(cancel, Effect.void)
            // Released fast now (nothing left to quit or delete); bounded so a stuck one cannot hold the node.
            yield* Effect.forEach(waiting, (d) => Deferred.await(d), { discard: true }).pipe(
              Effect.timeoutOption(stopWaitMs),
            )
            yield* Effect.logInfo(
              `node stopping (${reason}): ${waiting.length} sessions ended in ${Date.now() - t0} ms${
                torn === undefined
                  ? ""
                  : ` (${torn.qemu} VMs killed, ${torn.proxies} proxies stopped, ${torn.tables} tables, ${torn.taps} TAPs removed)`
              }`,
            )
          }),
        capacity: Effect.sync(() => ({ maxConcurrent: maxVms, running: live.size, basis: capacityBasis })),
        exec: guests.exec,
        readFile: guests.readFile,
        writeFile: guests.writeFile,
        forward: guests.forward,
        openSocket: guests.openSocket,
        sendSocket: guests.sendSocket,
        openShell: guests.openShell,
        shellInput: guests.shellInput,
      })
    }),
  )
}
