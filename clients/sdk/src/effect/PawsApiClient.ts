import { Context, Layer, Redacted } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient, HttpApiMiddleware } from "effect/http-api"
import { Api } from "@paws/core/Api"
import { ApiAuth } from "@paws/core/ApiMiddleware"

export interface PawsApiClientOptions {
  readonly baseUrl: string
  readonly apiKey: string | Redacted.Redacted<string>
}

/**
 * The typed `HttpApiClient` derived from core's HttpApi contract (the one the server implements), so requests
 * are encoded and answers and errors decoded by the same Schemas.
 */
export class PawsApiClient extends Context.Service<PawsApiClient, HttpApiClient.ForApi<typeof Api>>()(
  "paws/sdk/PawsApiClient",
) {
  /** The client over whichever `HttpClient` the program provides. */
  static readonly layerNoDeps = (options: PawsApiClientOptions) => {
    const key = Redacted.isRedacted(options.apiKey) ? options.apiKey : Redacted.make(options.apiKey)
    return Layer.effect(
      PawsApiClient,
      HttpApiClient.make(Api, {
        transformClient: (client) =>
          client.pipe(HttpClient.mapRequest(HttpClientRequest.prependUrl(options.baseUrl.replace(/\/+$/, "")))),
      }),
    ).pipe(
      Layer.provide(
        HttpApiMiddleware.layerClient(
          ApiAuth,
          ({ next, request }) => next(HttpClientRequest.bearerToken(request, Redacted.value(key))),
        ),
      ),
    )
  }

  /** The client over `fetch`. */
  static readonly layer = (options: PawsApiClientOptions) =>
    PawsApiClient.layerNoDeps(options).pipe(Layer.provide(FetchHttpClient.layer))
}
