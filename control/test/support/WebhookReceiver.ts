// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON bodies
import { Effect, Queue } from "effect"
import { createServer } from "node:http"

/** A local webhook receiver for the scope: every POSTed JSON body, in arrival order. */
export const webhookReceiver = Effect.gen(function* () {
  const bodies = yield* Queue.unbounded<{ method: string | undefined; contentType: string | undefined; body: any }>()
  const server = createServer((req, res) => {
    let text = ""
    req.on("data", (d) => (text += String(d)))
    req.on("end", () => {
      Queue.offerUnsafe(bodies, {
        method: req.method,
        contentType: req.headers["content-type"],
        body: JSON.parse(text),
      })
      res.end("ok")
    })
  })
  yield* Effect.acquireRelease(
    Effect.promise(() => new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))),
    () => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve()))),
  )
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, bodies }
})
