import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

/** What a session restores when it names none: always the instance's, never claimed by a project. */
export const sharedSnapshot = "default"

/**
 * Which project a snapshot belongs to. Snapshots live on nodes under one name per instance;
 * `snapshot_projects` (migration 0020) records the project that built one through the API. A
 * name without a row is the instance's (the nodes' own PAWS_NODE_SNAPSHOTS, `default` among
 * them, and those built before projects): every project sees and uses it.
 */
export class SnapshotProjects extends Context.Service<SnapshotProjects, {
  /** The owning project; undefined: the instance's, shared. */
  readonly ownerOf: (name: string) => Effect.Effect<string | undefined>
  readonly owners: Effect.Effect<ReadonlyMap<string, string>>
  /** Records `project` as the owner unless one is recorded; the owner after the call. */
  readonly claim: (name: string, project: string) => Effect.Effect<string>
  readonly release: (name: string) => Effect.Effect<void>
  /**
   * Problems naming `path` when `project`'s sessions may not use the snapshot: another project's
   * snapshot reads as one that does not exist.
   */
  readonly problems: (
    name: string | undefined,
    project: string,
    path: string,
  ) => Effect.Effect<ReadonlyArray<{ path: string; message: string }>>
}>()("paws/control/SnapshotProjects") {
  static readonly layer = Layer.effect(
    SnapshotProjects,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const ownerOf = (name: string) =>
        sql<{ project: string }>`SELECT project FROM snapshot_projects WHERE name = ${name}`.pipe(
          Effect.map((rows) => rows[0]?.project),
          Effect.orDie,
        )
      const owners = sql<{ name: string; project: string }>`SELECT name, project FROM snapshot_projects`.pipe(
        Effect.map((rows) => new Map(rows.map((r) => [r.name, r.project]))),
        Effect.orDie,
      )
      const claim = (name: string, project: string) =>
        sql`INSERT INTO snapshot_projects (name, project) VALUES (${name}, ${project}) ON CONFLICT (name) DO NOTHING`
          .pipe(Effect.orDie, Effect.andThen(ownerOf(name)), Effect.map((owner) => owner ?? project))
      const release = (name: string) =>
        sql`DELETE FROM snapshot_projects WHERE name = ${name}`.pipe(Effect.orDie, Effect.asVoid)
      const problems = (name: string | undefined, project: string, path: string) =>
        name === undefined || name === sharedSnapshot
          ? Effect.succeed([])
          : Effect.map(ownerOf(name), (owner) =>
            owner === undefined || owner === project
              ? []
              : [{ path, message: `no snapshot "${name}" in project ${project} (paws snapshots lists yours)` }])
      return SnapshotProjects.of({ ownerOf, owners, claim, release, problems })
    }),
  )
}
