import { InvalidRequest, PayloadTooLarge, RequestValidation } from "@paws/core"
import { ByteSize, Effect, Layer, SchemaIssue } from "effect"
import { HttpIncomingMessage, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiError } from "effect/http-api"
import { ControlConfig } from "../ControlConfig.ts"

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const slotNames: Record<string, string> = { Payload: "body", Query: "query", Params: "path", Headers: "header" }

/** `network.allowOut[0]`-style paths, prefixed with where the value was (body, query, path, header). */
const fieldPath = (slot: string, path: ReadonlyArray<PropertyKey | { key: PropertyKey }>): string => {
  let out = ""
  for (const segment of path) {
    const key = typeof segment === "object" ? segment.key : segment
    out += typeof key === "number" ? `[${key}]` : out === "" ? String(key) : `.${String(key)}`
  }
  return slot === "body" ? (out === "" ? "body" : out) : `${slot}.${out}`
}

const tooLarge = (max: number) =>
  new PayloadTooLarge({ message: `request body exceeds the limit of ${max} bytes`, maxBytes: max })

const isBodyTooLarge = (defect: unknown): boolean => {
  const d = defect as { _tag?: string; reason?: { _tag?: string; reason?: string } } | undefined
  return d?._tag === "HttpServerError" && d.reason?._tag === "RequestParseError" && d.reason.reason === "BodyTooLarge"
}

/**
 * Every request-decoding problem becomes a 400 naming its fields; bodies over
 * PAWS_MAX_BODY_BYTES become a 413 before they are read (Content-Length) or while they are
 * read (chunked).
 */
export const RequestValidationLive = Layer.effect(
  RequestValidation,
  Effect.gen(function* () {
    const { maxBodyBytes } = yield* ControlConfig
    const limit = ByteSize.bytes(maxBodyBytes)
    return RequestValidation.of((httpEffect) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const length = Number(request.headers["content-length"] ?? 0)
        if (length > maxBodyBytes) return yield* tooLarge(maxBodyBytes)
        return yield* httpEffect.pipe(
          Effect.provideService(HttpIncomingMessage.MaxBodySize, limit),
          Effect.catch((error: unknown) => {
            if (!HttpApiError.HttpApiSchemaError.is(error)) return Effect.fail(error as never)
            const schemaError = error as HttpApiError.HttpApiSchemaError
            if (schemaError.kind === "Body" || schemaError.kind === "ResponseHeaders") return Effect.die(schemaError)
            const slot = slotNames[schemaError.kind] ?? schemaError.kind.toLowerCase()
            const issues = formatIssues((schemaError.cause as { issue: SchemaIssue.Issue }).issue).issues.map((i) => ({
              path: fieldPath(slot, (i.path ?? []) as ReadonlyArray<PropertyKey>),
              message: i.message,
            }))
            return Effect.fail(
              new InvalidRequest({
                message: `invalid ${slot}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`.slice(0, 2000),
                issues,
              }),
            )
          }),
          Effect.catchDefect((defect) =>
            isBodyTooLarge(defect) ? Effect.fail(tooLarge(maxBodyBytes)) : Effect.die(defect)
          ),
          // The framework answers an unknown content type with a plain-text 415; say what to send instead.
          Effect.map((response) =>
            response.status === 415
              ? HttpServerResponse.jsonUnsafe({
                _tag: "UnsupportedMediaType",
                message: "send the request body as JSON with `Content-Type: application/json`",
              }, { status: 415 })
              : response
          ),
        )
      })
    )
  }),
)
