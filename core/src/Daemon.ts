import { Schema } from "effect"
import { SessionSpecView } from "./Session.ts"
import { SessionSpec } from "./SessionSpec.ts"
import { DaemonLimits } from "./DaemonLimits.ts"

const namePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/

export const DaemonName = Schema.String.pipe(
  Schema.check(Schema.isPattern(namePattern, { message: "must be 1-64 chars of a-z 0-9 . _ -" })),
).annotate({ identifier: "DaemonName" })

export const TriggerName = DaemonName.annotate({ identifier: "TriggerName" })

/** `POST /v1/hooks/{daemon}/{trigger}` signed with the trigger's secret (`X-Paws-Signature-256`). */
export const WebhookTrigger = Schema.Struct({
  kind: Schema.Literal("webhook"),
  name: TriggerName,
}).annotate({ identifier: "WebhookTrigger" })

/** Which GitHub deliveries fire: an event, optionally its action, a push's branch, a comment body pattern. */
export const GithubFilter = Schema.Struct({
  /** `X-GitHub-Event`, e.g. `pull_request`, `issue_comment`, `push`. */
  event: Schema.String.pipe(Schema.check(Schema.isPattern(/^[a-z_]{1,64}$/, { message: "must be a GitHub event" }))),
  /** The payload's `action`, e.g. `opened`, `created`. */
  action: Schema.optionalKey(
    Schema.String.pipe(Schema.check(Schema.isPattern(/^[a-z_]{1,64}$/, { message: "must be a GitHub action" }))),
  ),
  /** `push` only: the branch pushed to (`refs/heads/` + this). */
  branch: Schema.optionalKey(Schema.String.pipe(Schema.check(Schema.isBetweenLength(1, 255)))),
  /** A JavaScript regular expression matched against the comment, issue or pull request body. */
  bodyPattern: Schema.optionalKey(Schema.String.pipe(Schema.check(Schema.isBetweenLength(1, 512)))),
}).annotate({ identifier: "GithubFilter" })
export type GithubFilter = typeof GithubFilter.Type

/** GitHub's webhook, pointed at `POST /v1/hooks/{daemon}/{trigger}` with the trigger's secret. */
export const GithubTrigger = Schema.Struct({
  kind: Schema.Literal("github"),
  name: TriggerName,
  filters: Schema.Array(GithubFilter).pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(32))),
}).annotate({ identifier: "GithubTrigger" })

export const missedTickPolicies = ["skip", "once"] as const

export const CronTrigger = Schema.Struct({
  kind: Schema.Literal("cron"),
  name: TriggerName,
  /** Five fields (minute hour day month weekday), or six with seconds first. */
  schedule: Schema.String.pipe(Schema.check(Schema.isBetweenLength(1, 128))),
  /** IANA time zone, e.g. `Europe/Paris`; default UTC. */
  timeZone: Schema.optionalKey(Schema.String.pipe(Schema.check(Schema.isBetweenLength(1, 64)))),
  /** Ticks missed while no control replica ran: `skip` them (default) or run `once` for all of them. */
  missed: Schema.optionalKey(Schema.Literals(missedTickPolicies)),
}).annotate({ identifier: "CronTrigger" })

export const WatchTrigger = Schema.Struct({
  kind: Schema.Literal("watch"),
  name: TriggerName,
  /** An https URL on a public address (the proxy's address policy applies). */
  url: Schema.String.pipe(Schema.check(Schema.isBetweenLength(9, 2048))),
  intervalSeconds: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 86_400 }))),
  /** RFC 6901 JSON pointer into the response; without it, the ETag (or the body's hash) is watched. */
  pointer: Schema.optionalKey(Schema.String.pipe(Schema.check(Schema.isMaxLength(512)))),
}).annotate({ identifier: "WatchTrigger" })

export const Trigger = Schema.Union([WebhookTrigger, GithubTrigger, CronTrigger, WatchTrigger]).annotate({
  message: "must be a trigger: kind webhook, github, cron or watch, with that kind's fields",
  identifier: "Trigger",
})
export type Trigger = typeof Trigger.Type
export type TriggerKind = Trigger["kind"]

export const concurrencyPolicies = ["queue", "skip", "replace"] as const
export const ConcurrencyPolicy = Schema.Literals(concurrencyPolicies).annotate({ identifier: "ConcurrencyPolicy" })
export type ConcurrencyPolicy = typeof ConcurrencyPolicy.Type

const Triggers = Schema.Array(Trigger).pipe(Schema.check(Schema.isMaxLength(16)))

/**
 * A daemon's memory: `/state` always persists between its invocations (the newest `keepGenerations`
 * saved states are kept); with `llmHistory` its sessions' proxies record LLM exchanges, served at
 * `GET /v1/daemons/{name}/history` and handed to the next invocation as `/input/history.jsonl`.
 */
export const DaemonMemory = Schema.Struct({
  llmHistory: Schema.optionalKey(Schema.Boolean),
  keepGenerations: Schema.optionalKey(Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 50 })))),
}).annotate({ identifier: "DaemonMemory" })
export type DaemonMemory = typeof DaemonMemory.Type

/** What a client submits to define a daemon: a session spec, plus when it runs. */
export const DaemonSpec = Schema.Struct({
  name: DaemonName,
  ...SessionSpec.fields,
  triggers: Schema.optionalKey(Triggers),
  /** What an invocation does while another is active: wait (`queue`), not run (`skip`), or cancel it (`replace`). */
  concurrency: Schema.optionalKey(ConcurrencyPolicy),
  enabled: Schema.optionalKey(Schema.Boolean),
  memory: Schema.optionalKey(DaemonMemory),
  /** Per-daemon limits; a trigger over one records a `rate_limited` invocation, a manual run is a 429. */
  limits: Schema.optionalKey(DaemonLimits),
}).annotate({ identifier: "DaemonSpec" })
export type DaemonSpec = typeof DaemonSpec.Type

/** `PATCH /v1/daemons/{name}`: the fields given replace the stored ones (`triggers` and `network` as a whole). */
export const DaemonPatch = Schema.Struct({
  snapshot: SessionSpec.fields.snapshot,
  workload: Schema.optionalKey(SessionSpec.fields.workload),
  resources: SessionSpec.fields.resources,
  timeoutMs: SessionSpec.fields.timeoutMs,
  network: SessionSpec.fields.network,
  metadata: SessionSpec.fields.metadata,
  nodeSelector: SessionSpec.fields.nodeSelector,
  mcp: SessionSpec.fields.mcp,
  triggers: Schema.optionalKey(Triggers),
  concurrency: Schema.optionalKey(ConcurrencyPolicy),
  enabled: Schema.optionalKey(Schema.Boolean),
  memory: Schema.optionalKey(DaemonMemory),
  /** Replaces the stored limits as a whole (`{}` lifts them all). */
  limits: Schema.optionalKey(DaemonLimits),
}).annotate({ identifier: "DaemonPatch" })
export type DaemonPatch = typeof DaemonPatch.Type

/** A daemon as stored and shown: credential header names only, never values or trigger secrets. */
export const DaemonView = Schema.Struct({
  name: DaemonName,
  snapshot: Schema.optionalKey(SessionSpecView.fields.snapshot),
  workload: SessionSpecView.fields.workload,
  resources: Schema.optionalKey(SessionSpecView.fields.resources),
  timeoutMs: Schema.optionalKey(SessionSpecView.fields.timeoutMs),
  network: Schema.optionalKey(Schema.Struct({
    ...SessionSpecView.fields.network.fields,
    allowWildcardCredential: SessionSpec.fields.network.schema.fields.allowWildcardCredential,
  })),
  metadata: SessionSpecView.fields.metadata,
  nodeSelector: SessionSpecView.fields.nodeSelector,
  mcp: SessionSpecView.fields.mcp,
  triggers: Schema.Array(Trigger),
  concurrency: ConcurrencyPolicy,
  enabled: Schema.Boolean,
  memory: Schema.optionalKey(DaemonMemory),
  limits: Schema.optionalKey(DaemonLimits),
  /** The project of the key that defined it: only that project's keys see it; its sessions run there. */
  project: Schema.String,
  createdAt: Schema.String,
  updatedAt: Schema.String,
}).annotate({ identifier: "Daemon" })
export type DaemonView = typeof DaemonView.Type

/** Create/patch response: the daemon, plus the secrets of webhook and GitHub triggers new in this request. */
export const DaemonSaved = Schema.Struct({
  daemon: DaemonView,
  /** Trigger name → signing secret, shown only here: control keeps it encrypted and never returns it again. */
  secrets: Schema.Record(Schema.String, Schema.String),
}).annotate({ identifier: "DaemonSaved" })
export type DaemonSaved = typeof DaemonSaved.Type

/** Response of `POST /v1/daemons/{name}/run` and of a hook: the session, or why none runs. */
export const DaemonInvocation = Schema.Struct({
  sessionId: Schema.String,
  /**
   * `pending`, or `cancelled` when the `skip` policy skipped it (reason `skipped_while_running`) or a
   * trigger fired over a limit (reason `rate_limited: <limit>`).
   */
  status: Schema.String,
}).annotate({ identifier: "DaemonInvocation" })
export type DaemonInvocation = typeof DaemonInvocation.Type

export class DaemonNotFound extends Schema.TaggedError<DaemonNotFound>()("DaemonNotFound", {
  daemon: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 404 }) {}

export class DaemonExists extends Schema.TaggedError<DaemonExists>()("DaemonExists", {
  daemon: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 409 }) {}

export class DaemonDisabled extends Schema.TaggedError<DaemonDisabled>()("DaemonDisabled", {
  daemon: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 409 }) {}

/** The trigger payload given to the guest: under /input, plus PAWS_TRIGGER; 1 MiB at most. */
export const inputMaxBytes = 1024 * 1024
