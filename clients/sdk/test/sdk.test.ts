import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { fileURLToPath } from "node:url"
import { registerFakeNode } from "../../../control/test/FakeNode.ts"
import { pgliteBackend, TestControl } from "../../../control/test/harness.ts"
import {
  ConflictError,
  createClient,
  InvalidRequestError,
  type LogEvent,
  NotFoundError,
  UnauthorizedError,
} from "../src/index.ts"
import { codeBlocks, runExample } from "./ReadmeExamples.ts"

const sdkDir = fileURLToPath(new URL("../", import.meta.url))
const secret = "sk-sdk-test-never-shown"
const collect = async <A>(items: AsyncIterable<A>): Promise<Array<A>> => {
  const out: Array<A> = []
  for await (const item of items) out.push(item)
  return out
}

describe("@paws/sdk against a real control plane", () => {
  layer(TestControl.layer().pipe(Layer.provide(pgliteBackend)), { excludeTestServices: true, timeout: 120_000 })(
    (it) => {
      it.effect("creates with credentials, follows logs to the end, and the secret is never returned", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const node = yield* registerFakeNode(control.registry, { id: "sdk-n1", maxConcurrent: 4 })
          const paws = createClient({ baseUrl: control.url, apiKey: control.adminKey })
          yield* Effect.promise(async () => {
            const { sessionId, status } = await paws.sessions.create({
              workload: { type: "script", script: "echo hi" },
              network: {
                allowOut: ["api.example.com"],
                credentials: { "api.example.com": { headers: { "x-api-key": secret } } },
              },
            })
            assert.strictEqual(status, "pending")
            const events = await collect(paws.sessions.logs(sessionId))
            const tags = events.map((e) => e.event._tag === "status" ? e.event.status : e.event._tag)
            assert.deepStrictEqual(tags, [
              "pending",
              "starting",
              "running",
              "output",
              "output",
              "audit",
              "result",
              "completed",
            ])
            const dispatched = node.dispatched.find((d) => d.sessionId === sessionId)
            assert.strictEqual(
              JSON.stringify(dispatched?.network).includes(secret),
              true,
              "the node got the credential",
            )
            const session = await paws.sessions.wait(sessionId)
            assert.strictEqual(session.status, "completed")
            assert.deepStrictEqual(session.result?.output, { ok: true })
            assert.notInclude(JSON.stringify(session), secret)

            // Resuming after the third event yields exactly the rest.
            const rest = await collect(paws.sessions.logs(sessionId, { lastEventId: events[2]!.id! }))
            assert.deepStrictEqual(rest.map((e) => e.id), events.slice(3).map((e) => e.id))
          })
        }))

      it.effect("reconnects a dropped event stream with Last-Event-ID, losing and repeating nothing", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          yield* registerFakeNode(control.registry, { id: "sdk-n2", maxConcurrent: 4 })
          const sent: Array<string | null> = []
          // The first events connection is cut after its first two frames, mid-session.
          const cutting = async (request: Request) => {
            const response = await fetch(request)
            if (!request.url.endsWith("/events")) return response
            sent.push(request.headers.get("last-event-id"))
            if (sent.length > 1) return response
            const reader = response.body!.getReader()
            let text = ""
            while ((text.match(/\n\n/g) ?? []).length < 2) text += new TextDecoder().decode((await reader.read()).value)
            await reader.cancel()
            return new Response(text.slice(0, text.indexOf("\n\n", text.indexOf("\n\n") + 2) + 2), response)
          }
          const paws = createClient({ baseUrl: control.url, apiKey: control.adminKey, fetch: cutting })
          yield* Effect.promise(async () => {
            const { sessionId } = await paws.sessions.create({ workload: { type: "script", script: "slow" } })
            const events: Array<LogEvent> = await collect(paws.sessions.logs(sessionId))
            assert.strictEqual(sent.length, 2, "one reconnect")
            assert.strictEqual(sent[0], null)
            assert.strictEqual(sent[1], events[1]!.id!, "resumed after the last event seen")
            const ids = events.map((e) => e.id)
            assert.strictEqual(new Set(ids).size, ids.length, "no event repeated")
            const last = events.at(-1)?.event
            assert.isTrue(last?._tag === "status" && last.status === "completed", JSON.stringify(last))
            assert.isTrue(events.some((e) => e.event._tag === "result"))
          })
        }))

      it.effect("cancels a running session; wait returns it cancelled", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          yield* registerFakeNode(control.registry, { id: "sdk-n3", maxConcurrent: 4 })
          const paws = createClient({ baseUrl: control.url, apiKey: control.adminKey })
          yield* Effect.promise(async () => {
            const { sessionId } = await paws.sessions.create({ workload: { type: "script", script: "hang" } })
            for await (const { event } of paws.sessions.logs(sessionId)) {
              if (event._tag === "status" && event.status === "running") break
            }
            const cancelled = await paws.sessions.cancel(sessionId)
            assert.include(["running", "cancelled"], cancelled.status)
            const done = await paws.sessions.wait(sessionId, { intervalMs: 50, timeoutMs: 10_000 })
            assert.strictEqual(done.status, "cancelled")
          })
        }))

      it.effect("lists with paging: pages of 2 cover every session once, newest first", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const paws = createClient({ baseUrl: control.url, apiKey: control.adminKey })
          yield* Effect.promise(async () => {
            const created: Array<string> = []
            for (let i = 0; i < 5; i++) {
              created.push(
                (await paws.sessions.create({ workload: { type: "script", script: `page ${i}` } })).sessionId,
              )
            }
            const first = await paws.sessions.list({ limit: 2 })
            assert.strictEqual(first.sessions.length, 2)
            assert.isString(first.nextCursor)
            const second = await paws.sessions.list({ limit: 2, cursor: first.nextCursor! })
            assert.notInclude(second.sessions.map((s) => s.id), first.sessions[0]!.id)
            const all = await collect(paws.sessions.listAll({ limit: 2 }))
            const ids = all.map((s) => s.id)
            assert.strictEqual(new Set(ids).size, ids.length)
            assert.deepStrictEqual(ids.filter((id) => created.includes(id)), [...created].reverse())
          })
        }))

      it.effect("builds, lists and deletes a snapshot", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          yield* registerFakeNode(control.registry, { id: "sdk-snap", maxConcurrent: 2 })
          const paws = createClient({ baseUrl: control.url, apiKey: control.adminKey })
          yield* Effect.promise(async () => {
            const accepted = await paws.snapshots.create({ name: "ts-sdk", setup: "apt-get install -y jq" })
            assert.strictEqual(accepted.status, "building")
            const deadline = Date.now() + 10_000
            let snapshot = await paws.snapshots.get("ts-sdk")
            while (snapshot.status !== "ready" && Date.now() < deadline) {
              await new Promise((resolve) => setTimeout(resolve, 50))
              snapshot = await paws.snapshots.get("ts-sdk")
            }
            assert.strictEqual(snapshot.status, "ready")
            assert.strictEqual(snapshot.manifest?.image.name, "default")
            assert.include((await paws.snapshots.list()).map((s) => s.name), "ts-sdk")
            await paws.snapshots.delete("ts-sdk")
            const gone = await paws.snapshots.get("ts-sdk").catch((e) => e)
            assert.instanceOf(gone, NotFoundError)
            assert.strictEqual(gone.tag, "SnapshotNotFound")
          })
        }))

      it.effect("defines a daemon, runs it and lists its invocations; secrets shown once", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          yield* registerFakeNode(control.registry, { id: "sdk-daemon", maxConcurrent: 2 })
          const paws = createClient({ baseUrl: control.url, apiKey: control.adminKey })
          yield* Effect.promise(async () => {
            const saved = await paws.daemons.create({
              name: "ts-daemon",
              workload: { type: "script", script: "echo ts daemon" },
              triggers: [{ kind: "webhook", name: "hook" }, { kind: "cron", name: "nightly", schedule: "0 3 * * *" }],
            })
            assert.deepStrictEqual(Object.keys(saved.secrets), ["hook"])
            const dup = await paws.daemons.create({ name: "ts-daemon", workload: saved.daemon.workload }).catch((e) =>
              e
            )
            assert.instanceOf(dup, ConflictError)
            const updated = await paws.daemons.update("ts-daemon", { concurrency: "replace" })
            assert.strictEqual(updated.daemon.concurrency, "replace")
            assert.include((await paws.daemons.list()).map((d) => d.name), "ts-daemon")
            const invoked = await paws.daemons.run("ts-daemon")
            const session = await paws.sessions.wait(invoked.sessionId, { intervalMs: 50, timeoutMs: 10_000 })
            assert.strictEqual(session.daemon, "ts-daemon")
            assert.deepStrictEqual(session.trigger, { kind: "manual", name: "manual" })
            const page = await paws.daemons.sessions("ts-daemon")
            assert.deepStrictEqual(page.sessions.map((s) => s.id), [invoked.sessionId])
            assert.notInclude(JSON.stringify(await paws.daemons.get("ts-daemon")), saved.secrets["hook"]!)
            await paws.daemons.delete("ts-daemon")
            const gone = await paws.daemons.get("ts-daemon").catch((e) => e)
            assert.instanceOf(gone, NotFoundError)
            assert.strictEqual(gone.tag, "DaemonNotFound")
          })
        }))

      it.effect("a 400, a 401 and a 404 are thrown as typed errors carrying the problem body", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const paws = createClient({ baseUrl: control.url, apiKey: control.adminKey })
          yield* Effect.promise(async () => {
            const bad = await paws.sessions.create({ workload: { type: "script", script: "" } }).catch((e) => e)
            assert.instanceOf(bad, InvalidRequestError)
            assert.strictEqual(bad.status, 400)
            assert.strictEqual(bad.tag, "InvalidRequest")
            assert.deepInclude(bad.issues.map((i: { path: string }) => i.path), "workload.script")

            const stranger = createClient({ baseUrl: control.url, apiKey: "paws_not-a-key" })
            const denied = await stranger.sessions.list().catch((e) => e)
            assert.instanceOf(denied, UnauthorizedError)
            assert.strictEqual(denied.problem?._tag, "Unauthorized")
            const deniedLogs = await collect(stranger.sessions.logs("0190a8a8-0000-7000-8000-000000000000")).catch((
              e,
            ) => e)
            assert.instanceOf(deniedLogs, UnauthorizedError)

            const missing = await paws.sessions.get("0190a8a8-0000-7000-8000-000000000000").catch((e) => e)
            assert.instanceOf(missing, NotFoundError)
            assert.strictEqual(missing.tag, "SessionNotFound")
          })
        }))

      it.effect("a create answered 503 is retried after Retry-After with the same idempotency key: one session", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          const keys: Array<string | null> = []
          // The first create reaches the server, but its answer is replaced by a 503 (as if a proxy lost it).
          const flaky = async (request: Request) => {
            const response = await fetch(request)
            if (request.method !== "POST") return response
            keys.push(request.headers.get("idempotency-key"))
            if (keys.length > 1) return response
            return new Response("", { status: 503, headers: { "retry-after": "1" } })
          }
          const paws = createClient({ baseUrl: control.url, apiKey: control.adminKey, fetch: flaky })
          yield* Effect.promise(async () => {
            const started = Date.now()
            const { sessionId } = await paws.sessions.create({ workload: { type: "script", script: "once" } })
            assert.isAtLeast(Date.now() - started, 1000, "waited for Retry-After")
            assert.strictEqual(keys.length, 2)
            assert.match(keys[0]!, /^[0-9a-f-]{36}$/)
            assert.strictEqual(keys[1], keys[0])
            const page = await paws.sessions.list({ limit: 200 })
            const onces = page.sessions.filter((s) =>
              s.spec.workload.type === "script" && s.spec.workload.script === "once"
            )
            assert.deepStrictEqual(onces.map((s) => s.id), [sessionId])
          })
        }))

      it.effect("the README examples run as written", () =>
        Effect.gen(function* () {
          const control = yield* TestControl
          yield* registerFakeNode(control.registry, { id: "sdk-readme", maxConcurrent: 4 })
          const env = { PAWS_URL: control.url, PAWS_API_KEY: control.adminKey }
          const [plain, effect] = codeBlocks(`${sdkDir}README.md`, "ts")
          assert.isDefined(plain)
          assert.isDefined(effect)
          const out = yield* Effect.promise(() =>
            runExample(process.execPath, sdkDir, `.readme-example-${process.pid}-1.ts`, plain!, env)
          )
          assert.match(out, /status: running/)
          assert.match(out, /hello from [0-9a-f-]{36}/)
          assert.match(out, /exit code: 0/)
          assert.match(out, /rejected: workload\.script/)
          const effectOut = yield* Effect.promise(() =>
            runExample(process.execPath, sdkDir, `.readme-example-${process.pid}-2.ts`, effect!, env)
          )
          assert.match(effectOut, /sessions: \d+/)
        }))
    },
  )
})
