import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { scoped } from "./ApiScoped.ts"
import { Forbidden, InvalidRequest, ServiceUnavailable } from "./Errors.ts"
import { SnapshotName } from "./SessionSpec.ts"
import { SnapshotAccepted, SnapshotBusy, SnapshotNotFound, SnapshotRequest, SnapshotView } from "./Snapshot.ts"

/** Snapshots: a booted, set-up guest saved on a node, which sessions restore instead of booting. */
export class SnapshotsApi extends HttpApiGroup.make("snapshots")
  .add(
    HttpApiEndpoint.post("create", "/", {
      payload: SnapshotRequest,
      success: SnapshotAccepted.pipe(HttpApiSchema.status(202)),
      error: [InvalidRequest, SnapshotBusy, ServiceUnavailable],
    }).pipe(scoped(
      "admin",
      "Build a snapshot",
      "Boot image `base` on a node, run the `setup` script as root with the network limited to " +
        "`network.allowOut` through a proxy (credential values are injected there and never enter the VM), " +
        "pause and save devices and memory. Returns at once; `GET /v1/snapshots/{name}` shows the build's " +
        "phase. A build of the same name still running is a 409. Sessions use it with `snapshot: NAME`. " +
        "It belongs to the key's project: only that project's keys (and the instance admin) see and use it; a name " +
        "another project holds, or one of the instance's own snapshots, is a 400 naming `name`. " +
        "Credential secrets must be at least 8 characters (an auth scheme such as `Bearer ` not counted); a credential on a `*.` pattern needs `network.allowWildcardCredential: true`, and over a public suffix (`*.co.uk`, `*.github.io`) the response carries a `warnings` entry.",
    )),
    HttpApiEndpoint.get("list", "/", { success: Schema.Array(SnapshotView) })
      .pipe(scoped(
        "read",
        "List snapshots",
        "Snapshots on every connected node, and builds running or failed: the key's project's and the instance's " +
          "own (the instance admin: every project's).",
      )),
    HttpApiEndpoint.get("get", "/:name", {
      params: { name: SnapshotName },
      success: SnapshotView,
      error: SnapshotNotFound,
    }).pipe(scoped("read", "Get a snapshot", "A snapshot with its manifest, or its build's current phase.")),
    HttpApiEndpoint.delete("delete", "/:name", {
      params: { name: SnapshotName },
      success: HttpApiSchema.NoContent,
      error: [SnapshotNotFound, SnapshotBusy, Forbidden],
    }).pipe(scoped(
      "admin",
      "Delete a snapshot",
      "Delete the snapshot from every node that has it (running sessions keep their copy). " +
        "A failed build is forgotten. While it is being built: 409. Another project's is a 404; the instance's " +
        "own snapshots (no `project`) are deleted only by the instance admin (403).",
    )),
  )
  .prefix("/v1/snapshots")
  .annotateMerge(OpenApi.annotations({ description: "Snapshots: prepared guests that sessions restore from." })) {}
