/** `@paws/sdk`: the paws control API from TypeScript. Types come from spec/openapi.json (`npm run generate`). */
export {
  type ClientOptions,
  createClient,
  type Daemon,
  type DaemonInvocation,
  type DaemonPatch,
  type DaemonSaved,
  type DaemonSpec,
  type ListSessionsQuery,
  type PawsClient,
  type Session,
  type SessionAccepted,
  type SessionPage,
  type SessionSpec,
  type SessionStatus,
  type Snapshot,
  type SnapshotAccepted,
  type SnapshotRequest,
  type WaitOptions,
} from "./client.ts"
export {
  ConflictError,
  ForbiddenError,
  InvalidRequestError,
  NotFoundError,
  PawsApiError,
  type Problem,
  UnauthorizedError,
} from "./errors.ts"
export { type AuditRecord, type FollowOptions, type LogEvent, type SessionEvent } from "./events.ts"
export { retryAfterMs, type RetryOptions } from "./retry.ts"
export type { components, operations, paths } from "./generated/schema.ts"
