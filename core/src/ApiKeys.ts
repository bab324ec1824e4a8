import { Schema } from "effect"
import { KeyLimits } from "./Limits.ts"
import { ProjectId } from "./Project.ts"

/**
 * What an API key may do. `admin` implies everything; `sessions:write` and `approve` imply `read`
 * (an approver reads what it approves); `approve` (decide approval gates) is implied by `admin`
 * only, so that an agent's `sessions:write` key cannot approve its own sessions.
 */
export const ApiScope = Schema.Literals(["admin", "sessions:write", "read", "approve"]).annotate({
  identifier: "ApiScope",
})
export type ApiScope = typeof ApiScope.Type

/** Whether a key holding `granted` may call an endpoint that requires `required`. */
export const scopeAllows = (granted: ReadonlyArray<ApiScope>, required: ApiScope): boolean =>
  granted.includes("admin") || granted.includes(required) ||
  (required === "read" && (granted.includes("sessions:write") || granted.includes("approve")))

export const ApiKeyId = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[a-z0-9]{12}$/, { message: "must be a 12-character API key id" })),
).annotate({ identifier: "ApiKeyId" })

/** An API key as listed: never the secret, which is shown once at creation and stored only hashed. */
export const ApiKey = Schema.Struct({
  id: ApiKeyId,
  name: Schema.String,
  scopes: Schema.Array(ApiScope),
  /** The project whose sessions this key sees and acts on. */
  project: ProjectId,
  limits: KeyLimits,
  createdAt: Schema.String,
  lastUsedAt: Schema.NullOr(Schema.String),
  revokedAt: Schema.NullOr(Schema.String),
}).annotate({ identifier: "ApiKey" })
export type ApiKey = typeof ApiKey.Type

/** PostgreSQL text cannot hold U+0000 or lone surrogates: such a name was a 500 (found by fuzz-api). */
export const storableName = Schema.makeFilter((s: string) =>
  (!s.includes("\u0000") && s.isWellFormed()) || "must not contain NUL (U+0000) or lone surrogates"
)

export const CreateApiKey = Schema.Struct({
  name: Schema.String.pipe(Schema.check(Schema.isBetweenLength(1, 128), storableName)),
  scopes: Schema.Array(ApiScope).pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(4))),
  /** Default: the caller's project. Only an instance admin may name another. */
  project: Schema.optionalKey(ProjectId),
  limits: Schema.optionalKey(KeyLimits),
}).annotate({ identifier: "CreateApiKey" })
export type CreateApiKey = typeof CreateApiKey.Type

export const UpdateApiKey = Schema.Struct({
  /** Fields given replace those limits; null removes one. */
  limits: KeyLimits,
}).annotate({ identifier: "UpdateApiKey" })
export type UpdateApiKey = typeof UpdateApiKey.Type

export const CreatedApiKey = Schema.Struct({
  key: ApiKey,
  /** The secret to send as `Authorization: Bearer …`; returned only by this response. */
  secret: Schema.String,
}).annotate({ identifier: "CreatedApiKey" })
export type CreatedApiKey = typeof CreatedApiKey.Type

export class ApiKeyNotFound extends Schema.TaggedError<ApiKeyNotFound>()("ApiKeyNotFound", {
  keyId: Schema.String,
  message: Schema.String,
}, { httpApiStatus: 404 }) {}
