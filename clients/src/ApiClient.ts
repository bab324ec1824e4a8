import { Context, Layer } from "effect"
import { PawsApiClient } from "@paws/sdk/effect"
import type { ClientSettings } from "./ClientConfig.ts"

/** The typed client for the control API: the one `@paws/sdk/effect` exports, derived from the contract in core. */
export { PawsApiClient as ApiClient }

export class Settings extends Context.Service<Settings, ClientSettings>()("paws/cli/Settings") {}

export const ApiClientLayer = (settings: ClientSettings) =>
  PawsApiClient.layer({ baseUrl: settings.url, apiKey: settings.apiKey }).pipe(
    Layer.merge(Layer.succeed(Settings, settings)),
  )

/** A one-line explanation of any failure, for humans at a terminal. */
export const describeError = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const e = error as { _tag?: string; message?: string; issues?: ReadonlyArray<{ path: string; message: string }> }
    if (e._tag === "HttpClientError" || e._tag === "RequestError" || e._tag === "TransportError") {
      return `cannot reach the control plane: ${e.message ?? String(error)} (is \`paws up\` running? check PAWS_URL)`
    }
    if (e.issues !== undefined && e.issues.length > 0) {
      return `${e.message ?? e._tag}:\n${e.issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}`
    }
    if (e._tag === "Unauthorized") {
      return `${e.message} (set PAWS_API_KEY to a valid key, or create one: paws keys create)`
    }
    if (e.message !== undefined) return e._tag !== undefined ? `${e._tag}: ${e.message}` : e.message
  }
  return String(error)
}
