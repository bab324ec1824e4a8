import { SnapshotUnavailable } from "./Errors.ts"
import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { scoped } from "./ApiScoped.ts"
import {
  DaemonExists,
  DaemonInvocation,
  DaemonName,
  DaemonNotFound,
  DaemonPatch,
  DaemonSaved,
  DaemonSpec,
  DaemonView,
} from "./Daemon.ts"
import { InvalidRequest } from "./Errors.ts"
import { RateLimited } from "./Limits.ts"

const name = { name: DaemonName }

/** Daemons: session definitions that triggers (webhook, GitHub, cron, watch) or a manual run turn into sessions. */
export class DaemonsApi extends HttpApiGroup.make("daemons")
  .add(
    HttpApiEndpoint.post("create", "/", {
      payload: DaemonSpec,
      success: DaemonSaved.pipe(HttpApiSchema.status(201)),
      error: [InvalidRequest, DaemonExists],
    }).pipe(scoped(
      "sessions:write",
      "Define a daemon",
      "A daemon is a session spec plus triggers. Credential values go to the vault and are never returned. " +
        "Each `webhook` and `github` trigger gets a signing secret, in this response only (`secrets`); " +
        "deliveries go to `POST /v1/hooks/{daemon}/{trigger}`. A name in use is a 409.",
    )),
    HttpApiEndpoint.get("list", "/", { success: Schema.Array(DaemonView) })
      .pipe(scoped("read", "List daemons")),
    HttpApiEndpoint.get("get", "/:name", { params: name, success: DaemonView, error: DaemonNotFound })
      .pipe(scoped("read", "Get a daemon")),
    HttpApiEndpoint.patch("update", "/:name", {
      params: name,
      payload: DaemonPatch,
      success: DaemonSaved,
      error: [InvalidRequest, DaemonNotFound],
    }).pipe(scoped(
      "sessions:write",
      "Change a daemon",
      "Fields given replace the stored ones; `network` (with its credentials) and `triggers` as a whole. " +
        "A trigger kept under the same name and kind keeps its secret; new ones get theirs in `secrets`.",
    )),
    HttpApiEndpoint.delete("delete", "/:name", {
      params: name,
      success: HttpApiSchema.NoContent,
      error: DaemonNotFound,
    }).pipe(scoped("sessions:write", "Delete a daemon", "Its triggers stop; its sessions stay listed.")),
    HttpApiEndpoint.post("run", "/:name/run", {
      params: name,
      success: DaemonInvocation.pipe(HttpApiSchema.status(202)),
      error: [DaemonNotFound, InvalidRequest, SnapshotUnavailable, RateLimited],
    }).pipe(scoped(
      "sessions:write",
      "Run a daemon now",
      "A manual invocation (trigger kind `manual`), under the daemon's concurrency policy; runs even when disabled. " +
        "Over one of the daemon's `limits` (or its project's quotas) it is a 429 with `Retry-After` naming the limit.",
    )),
  )
  .prefix("/v1/daemons")
  .annotateMerge(OpenApi.annotations({ description: "Daemons: persistent agent roles fired by triggers." })) {}
