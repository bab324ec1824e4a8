import { Cause, Data, Effect, Queue, Stream } from "effect"
import type { IncomingMessage } from "node:http"
import * as https from "node:https"
import * as fs from "node:fs/promises"
import * as path from "node:path"

/** A Kubernetes API call that failed; `status` is the HTTP status when the API answered. */
export class KubeApiError extends Data.TaggedError("KubeApiError")<{
  readonly message: string
  readonly status?: number | undefined
}> {}

/**
 * Where the API is and how to prove who we are: the in-cluster service account (token, CA and
 * namespace files under `serviceAccountDir`) and `KUBERNETES_SERVICE_HOST`/`_PORT` unless a URL is given.
 */
export interface KubeApiTarget {
  readonly url: string
  readonly serviceAccountDir: string
}

/** Reads the service-account files on every call: projected tokens are rotated by the kubelet. */
const credentials = (target: KubeApiTarget) =>
  Effect.tryPromise({
    try: async () => ({
      token: (await fs.readFile(path.join(target.serviceAccountDir, "token"), "utf8")).trim(),
      ca: await fs.readFile(path.join(target.serviceAccountDir, "ca.crt"), "utf8"),
    }),
    catch: (e) => new KubeApiError({ message: `service account unreadable: ${(e as Error).message}` }),
  })

/** The namespace this pod runs in, from the service account's `namespace` file. */
export const podNamespace = (serviceAccountDir: string) =>
  Effect.tryPromise({
    try: async () => (await fs.readFile(path.join(serviceAccountDir, "namespace"), "utf8")).trim(),
    catch: (e) => new KubeApiError({ message: `service account namespace unreadable: ${(e as Error).message}` }),
  })

const headers = (token: string) => ({ authorization: `Bearer ${token}`, accept: "application/json" })

/** Opens a request; a watch's socket silent past `idleMs` (no event, no bookmark) counts as failed. */
const open = (
  target: KubeApiTarget,
  apiPath: string,
  onResponse: (res: IncomingMessage) => void,
  onError: (e: KubeApiError) => void,
  idleMs: number,
) =>
  Effect.flatMap(credentials(target), ({ token, ca }) =>
    Effect.sync(() => {
      const req = https.request(new URL(apiPath, target.url), { ca, headers: headers(token) }, onResponse)
      req.on("error", (e) => onError(new KubeApiError({ message: e.message })))
      req.setTimeout(idleMs, () => req.destroy(new Error(`no data from the Kubernetes API for ${idleMs} ms`)))
      req.end()
      return req
    }))

const failed = (res: IncomingMessage, body: string) =>
  new KubeApiError({
    message: `Kubernetes API answered ${res.statusCode}: ${body.slice(0, 300)}`,
    status: res.statusCode,
  })

/** GET one JSON document (a list). */
export const kubeGet = (target: KubeApiTarget, apiPath: string): Effect.Effect<unknown, KubeApiError> =>
  Effect.flatMap(credentials(target), ({ token, ca }) =>
    Effect.tryPromise({
      try: (signal) =>
        new Promise<unknown>((resolve, reject) => {
          const req = https.request(new URL(apiPath, target.url), { ca, headers: headers(token), signal }, (res) => {
            let body = ""
            res.setEncoding("utf8")
            res.on("data", (c: string) => (body += c))
            res.on("error", reject)
            res.on("end", () => {
              if (res.statusCode !== 200) return reject(failed(res, body))
              try {
                resolve(JSON.parse(body))
              } catch {
                reject(new KubeApiError({ message: "Kubernetes API answered with invalid JSON" }))
              }
            })
          })
          req.on("error", reject)
          req.setTimeout(30_000, () => req.destroy(new Error("no answer from the Kubernetes API in 30 s")))
          req.end()
        }),
      catch: (e) => e instanceof KubeApiError ? e : new KubeApiError({ message: (e as Error).message }),
    }))

/** A watch: one JSON event per line, until the API closes the stream (its timeout) or fails. */
export const kubeWatch = (target: KubeApiTarget, apiPath: string): Stream.Stream<unknown, KubeApiError> =>
  Stream.callback<unknown, KubeApiError>((queue) =>
    Effect.gen(function* () {
      const fail = (e: KubeApiError) => Queue.failCauseUnsafe(queue, Cause.fail(e))
      const onResponse = (res: IncomingMessage) => {
        let pending = ""
        let body = ""
        res.setEncoding("utf8")
        res.on("data", (chunk: string) => {
          if (res.statusCode !== 200) return void (body += chunk)
          pending += chunk
          let nl: number
          while ((nl = pending.indexOf("\n")) >= 0) {
            const line = pending.slice(0, nl).trim()
            pending = pending.slice(nl + 1)
            if (line === "") continue
            try {
              Queue.offerUnsafe(queue, JSON.parse(line))
            } catch {
              return fail(new KubeApiError({ message: "Kubernetes watch sent a line that is not JSON" }))
            }
          }
        })
        res.on("error", (e) => fail(new KubeApiError({ message: e.message })))
        res.on("end", () => (res.statusCode === 200 ? Queue.endUnsafe(queue) : fail(failed(res, body))))
      }
      // The API sends a bookmark about once a minute on a healthy watch.
      const req = yield* open(target, apiPath, onResponse, fail, 5 * 60_000)
      yield* Effect.addFinalizer(() => Effect.sync(() => req.destroy()))
    })
  )
