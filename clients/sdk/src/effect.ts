/**
 * `@paws/sdk/effect`: the control API for Effect programs: the `HttpApiClient` derived from core's contract, and a
 * session's events as a `Stream` that resumes with Last-Event-ID.
 */
export { Api as PawsApi } from "@paws/core/Api"
export { PawsApiClient, type PawsApiClientOptions } from "./effect/PawsApiClient.ts"
export { type EventSource, EventStreamError, sessionEvents, type StreamedEvent } from "./effect/SessionEvents.ts"
