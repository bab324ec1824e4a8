import { Context, Deferred, Effect, Layer, Option, Queue, Stream } from "effect"
import {
  NodeAtCapacity,
  type NodeSessionEvent,
  NodeSessionNotFound,
  SessionAlreadyRunning,
  type SessionDispatch,
  type UnknownSnapshot,
} from "@paws/core"
import { ImageStore } from "../image/ImageStore.ts"
import { SnapshotStore } from "../snapshot/SnapshotStore.ts"
import { NodeConfig } from "../NodeConfig.ts"
import { SessionRunner } from "./SessionRunner.ts"

/**
 * The node's live sessions: admission (capacity, duplicates, snapshot), the event stream of
 * each, and cancel. A session lives exactly as long as its event stream: if the caller goes
 * away the stream's scope closes and the session's resources are released.
 */
export class LiveSessions extends Context.Service<LiveSessions, {
  readonly run: (
    dispatch: SessionDispatch,
  ) => Stream.Stream<NodeSessionEvent, NodeAtCapacity | SessionAlreadyRunning | UnknownSnapshot>
  readonly cancel: (sessionId: string) => Effect.Effect<void, NodeSessionNotFound>
  /** A human's decision on a request the session's proxy holds; false when its proxy is not running yet. */
  readonly decideEgress: (
    sessionId: string,
    requestId: string,
    approve: boolean,
  ) => Effect.Effect<boolean, NodeSessionNotFound>
  readonly ids: Effect.Effect<ReadonlySet<string>>
  readonly capacity: Effect.Effect<{ readonly maxConcurrent: number; readonly running: number }>
}>()("paws/node/session/LiveSessions") {
  static readonly layer = Layer.effect(
    LiveSessions,
    Effect.gen(function* () {
      const { maxVms } = yield* NodeConfig
      const runner = yield* SessionRunner
      const images = yield* ImageStore
      const live = new Map<string, Deferred.Deferred<void>>()
      const egress = new Map<string, { decide?: (requestId: string, approve: boolean) => void }>()
      // A session names an image or a snapshot (one name space); a snapshot may have a base image of another name.
      const snapshots = yield* Effect.serviceOption(SnapshotStore)
      const known = (name: string) =>
        images.get(name).pipe(
          Effect.catchTag("UnknownSnapshot", (unknown) =>
            Option.isNone(snapshots) ? Effect.fail(unknown) : snapshots.value.find(name).pipe(
              // A refused snapshot is admitted: the runner fails the session with the reason.
              Effect.map(Option.isSome),
              Effect.orElseSucceed(() =>
                true
              ),
              Effect.flatMap((exists) => exists ? Effect.void : Effect.fail(unknown)),
            )),
        )

      const admit = (dispatch: SessionDispatch) =>
        Effect.gen(function* () {
          const id = dispatch.sessionId
          if (live.has(id)) {
            return yield* new SessionAlreadyRunning({ sessionId: id, message: `session ${id} is already running here` })
          }
          yield* known(dispatch.snapshot)
          if (live.size >= maxVms) {
            return yield* new NodeAtCapacity({ message: `node runs ${live.size} of ${maxVms} VMs` })
          }
          const cancel = Deferred.makeUnsafe<void>()
          live.set(id, cancel)
          return cancel
        })

      const run = (dispatch: SessionDispatch) =>
        Stream.callback<NodeSessionEvent, NodeAtCapacity | SessionAlreadyRunning | UnknownSnapshot>((queue) =>
          Effect.gen(function* () {
            const cancel = yield* Effect.acquireRelease(
              admit(dispatch),
              () => Effect.sync(() => live.delete(dispatch.sessionId) && egress.delete(dispatch.sessionId)),
            )
            const holder = {}
            egress.set(dispatch.sessionId, holder)
            yield* runner.run(dispatch, (event) => void Queue.offerUnsafe(queue, event), cancel, holder).pipe(
              Effect.ensuring(Queue.end(queue)),
              Effect.forkScoped,
            )
          })
        )

      return LiveSessions.of({
        run,
        cancel: (sessionId) =>
          Effect.suspend(() => {
            const cancel = live.get(sessionId)
            if (cancel === undefined) {
              return Effect.fail(new NodeSessionNotFound({ sessionId, message: `no live session ${sessionId}` }))
            }
            return Deferred.succeed(cancel, undefined).pipe(Effect.asVoid)
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
        ids: Effect.sync(() => new Set(live.keys())),
        capacity: Effect.sync(() => ({ maxConcurrent: maxVms, running: live.size })),
      })
    }),
  )
}
