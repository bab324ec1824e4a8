import type { components } from "./generated/schema.ts"

type Schemas = components["schemas"]

/** Every error body the API can answer with (`{ _tag, message, … }`), from the spec's `*Encoded` schemas. */
export type Problem = Schemas[Extract<keyof Schemas, `${string}Encoded`>]

/** A non-2xx answer from the control API, carrying its problem body. */
export class PawsApiError extends Error {
  override readonly name: string = "PawsApiError"
  /** The HTTP status. */
  readonly status: number
  /** The problem's `_tag` (e.g. `InvalidRequest`, `SessionNotFound`), or `HttpError` when the body had none. */
  readonly tag: string
  /** The decoded problem body; undefined when the server sent no JSON (e.g. a proxy's 502). */
  readonly problem: Problem | undefined

  constructor(status: number, body: unknown) {
    const problem = isProblem(body) ? body : undefined
    super(problem?.message ?? `HTTP ${status}${typeof body === "string" && body !== "" ? `: ${body}` : ""}`)
    this.status = status
    this.tag = problem?._tag ?? "HttpError"
    this.problem = problem
  }
}

/** 400: the request did not match the API; `issues` names each bad field. */
export class InvalidRequestError extends PawsApiError {
  override readonly name = "InvalidRequestError"
  get issues(): ReadonlyArray<Schemas["FieldIssue"]> {
    return this.problem !== undefined && "issues" in this.problem ? this.problem.issues : []
  }
}
/** 401: the API key is missing, unknown or revoked. */
export class UnauthorizedError extends PawsApiError {
  override readonly name = "UnauthorizedError"
}
/** 403: the API key lacks the scope this call needs. */
export class ForbiddenError extends PawsApiError {
  override readonly name = "ForbiddenError"
}
/** 404: no such session, snapshot, key or token. */
export class NotFoundError extends PawsApiError {
  override readonly name = "NotFoundError"
}
/** 409: the state forbids it (cancelling a finished session, an idempotency key reused with another body, …). */
export class ConflictError extends PawsApiError {
  override readonly name = "ConflictError"
}

const isProblem = (body: unknown): body is Problem =>
  typeof body === "object" && body !== null && typeof (body as { _tag?: unknown })._tag === "string" &&
  typeof (body as { message?: unknown }).message === "string"

const byStatus: Record<number, typeof PawsApiError> = {
  400: InvalidRequestError,
  401: UnauthorizedError,
  403: ForbiddenError,
  404: NotFoundError,
  409: ConflictError,
}

/** The typed error for an HTTP status and its (already parsed) body. */
export const apiError = (status: number, body: unknown): PawsApiError =>
  new (byStatus[status] ?? PawsApiError)(status, body)
