import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { ensureConsoleBuilt } from "../../clients/console/scripts/ensure-built.ts"
import { consoleDistDir } from "../src/http/ConsoleAssets.ts"
import { call, pgliteBackend, TestControl } from "./harness.ts"

describe("console assets", () => {
  const built = Layer.effectDiscard(Effect.promise(() => ensureConsoleBuilt()))
  layer(Layer.merge(TestControl.layer(), built).pipe(Layer.provide(pgliteBackend)), {
    excludeTestServices: true,
    timeout: 120_000,
  })((it) => {
    it.effect("serves the built console at /, its hashed assets cached, and index.html for client routes", () =>
      Effect.gen(function* () {
        const control = yield* TestControl
        const index = yield* call(control, "GET", "/", { key: null })
        assert.strictEqual(index.status, 200)
        assert.match(index.headers.get("content-type") ?? "", /^text\/html/)
        assert.strictEqual(index.headers.get("cache-control"), "no-cache")
        assert.include(index.headers.get("content-security-policy") ?? "", "frame-ancestors 'none'")
        const script = /src="(\/assets\/[^"]+\.js)"/.exec(index.text)?.[1]
        assert.isDefined(script, index.text)
        assert.deepStrictEqual(readdirSync(join(consoleDistDir, "assets")).includes(script!.slice(8)), true)

        const js = yield* call(control, "GET", script!, { key: null })
        assert.strictEqual(js.status, 200)
        assert.match(js.headers.get("content-type") ?? "", /^text\/javascript/)
        assert.strictEqual(js.headers.get("cache-control"), "public, max-age=31536000, immutable")
        const css = /href="(\/assets\/[^"]+\.css)"/.exec(index.text)?.[1]
        assert.match((yield* call(control, "GET", css!, { key: null })).headers.get("content-type") ?? "", /^text\/css/)

        // A client route reloads into the app; a stale asset name is a 404, not HTML pretending to be script.
        const deep = yield* call(control, "GET", "/sessions/00000000-0000-0000-0000-000000000000?x=1", { key: null })
        assert.strictEqual(deep.status, 200)
        assert.strictEqual(deep.text, index.text)
        assert.strictEqual((yield* call(control, "GET", "/assets/gone-1234.js", { key: null })).status, 404)
        assert.strictEqual((yield* call(control, "GET", "/%E0%A4%A", { key: null })).status, 404) // the router refuses it
        // Not a host: a path starting "//" is still a path of this origin (the fuzz suite found a 500 here).
        assert.strictEqual((yield* call(control, "GET", "//%F1%AF%9B%96/keys?x=%F0", { key: null })).text, index.text)
      }))

    it.effect("API, exposure, hook and health paths keep their meaning", () =>
      Effect.gen(function* () {
        const control = yield* TestControl
        assert.strictEqual((yield* call(control, "GET", "/v1/sessions")).status, 200)
        assert.strictEqual((yield* call(control, "GET", "/v1/sessions", { key: null })).status, 401)
        const unknownApi = yield* call(control, "GET", "/v1/no-such-thing")
        assert.strictEqual(unknownApi.status, 404)
        assert.notInclude(unknownApi.text, "<html")
        const otherVersion = yield* call(control, "GET", "/v2/sessions", { key: null })
        assert.strictEqual(otherVersion.status, 404)
        assert.strictEqual(otherVersion.body._tag, "NotFound")
        assert.strictEqual((yield* call(control, "GET", "/healthz", { key: null })).status, 200)
        assert.strictEqual((yield* call(control, "GET", "/openapi.json", { key: null })).status, 200)
        const exposure = yield* call(control, "GET", "/p/abcdefghijklmnopqrstuvwx/", { key: null })
        assert.strictEqual(exposure.status, 404)
        assert.notInclude(exposure.text, "<html")
        assert.notInclude((yield* call(control, "GET", "/hooks/x", { key: null })).text, "<html")
      }))
  })
})
