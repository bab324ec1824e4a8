import {
  Forbidden,
  InvalidRequest,
  isInstanceAdmin,
  type Principal,
  SnapshotNotFound,
  type SnapshotRequest,
  type SnapshotView,
} from "@paws/core"
import { Effect } from "effect"
import { sharedSnapshot, SnapshotProjects } from "../SnapshotProjects.ts"
import { Snapshots } from "../Snapshots.ts"

const notFound = (name: string) =>
  new SnapshotNotFound({ snapshot: name, message: `no snapshot "${name}" on any connected node` })

const nameTaken = (message: string) =>
  new InvalidRequest({ message: `name: ${message}`, issues: [{ path: "name", message }] })

/**
 * Snapshots within projects: one is built in the calling key's project and seen (listed, read,
 * deleted, restored) only there; another project's reads as unknown (404). The instance's own
 * snapshots (no project: the nodes' PAWS_NODE_SNAPSHOTS, `default`) are seen by all and rebuilt
 * or deleted only by the instance admin, who also sees every project's. Names are one namespace
 * per instance (they name files on the nodes), so a name another project holds is refused by name.
 */
export const makeProjectSnapshots = Effect.gen(function* () {
  const snapshots = yield* Snapshots
  const owners = yield* SnapshotProjects

  const withProject = (view: SnapshotView, owner: string | undefined): SnapshotView =>
    owner === undefined ? view : { ...view, project: owner }
  const visible = (p: Principal, owner: string | undefined) =>
    owner === undefined || owner === p.project || isInstanceAdmin(p)

  const create = Effect.fn("ProjectSnapshots.create")(function* (p: Principal, r: SnapshotRequest) {
    const admin = isInstanceAdmin(p)
    const owner = yield* owners.ownerOf(r.name)
    if (owner !== undefined && owner !== p.project && !admin) {
      return yield* nameTaken(`"${r.name}" is taken by another project; choose another name`)
    }
    let claimed = false
    if (owner === undefined && r.name !== sharedSnapshot) {
      const onNodes = (yield* snapshots.list).some((s) => s.name === r.name)
      if (onNodes && !admin) {
        return yield* nameTaken(`"${r.name}" is the instance's snapshot, shared by every project; choose another name`)
      }
      // A new name is the caller's project's; rebuilding an instance snapshot keeps it the instance's.
      if (!onNodes) {
        const now = yield* owners.claim(r.name, p.project)
        if (now !== p.project) return yield* nameTaken(`"${r.name}" is taken by another project; choose another name`)
        claimed = true
      }
    } else if (r.name === sharedSnapshot && !admin) {
      return yield* nameTaken(`"${sharedSnapshot}" is the instance's snapshot; only the instance admin rebuilds it`)
    }
    const accepted = yield* snapshots.create(r).pipe(
      Effect.tapError(() => claimed ? owners.release(r.name) : Effect.void),
    )
    const project = owner ?? (claimed ? p.project : undefined)
    return project === undefined ? accepted : { ...accepted, project }
  })

  const list = (p: Principal) =>
    Effect.gen(function* () {
      const all = yield* snapshots.list
      const byName = yield* owners.owners
      return all.filter((s) => visible(p, byName.get(s.name))).map((s) => withProject(s, byName.get(s.name)))
    })

  const get = (p: Principal, name: string) =>
    Effect.gen(function* () {
      const owner = yield* owners.ownerOf(name)
      if (!visible(p, owner)) return yield* notFound(name)
      return withProject(yield* snapshots.get(name), owner)
    })

  const remove = (p: Principal, name: string) =>
    Effect.gen(function* () {
      const owner = yield* owners.ownerOf(name)
      if (!visible(p, owner)) return yield* notFound(name)
      if (owner === undefined && !isInstanceAdmin(p)) {
        return yield* new Forbidden({
          message: `"${name}" is the instance's snapshot, shared by every project: only the instance admin deletes it`,
          requiredScope: "admin",
        })
      }
      yield* snapshots.remove(name).pipe(
        // Gone from the nodes, or never built there: either way the name is free again.
        Effect.catchTag("SnapshotNotFound", (e) => owner === undefined ? Effect.fail(e) : Effect.void),
      )
      if (owner !== undefined) yield* owners.release(name)
    })

  return { create, list, get, remove }
})
