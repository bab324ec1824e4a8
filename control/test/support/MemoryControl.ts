import { ConfigProvider, Context, Effect, Layer, References } from "effect"
import { HttpServer } from "effect/http"
import { SqlClient } from "effect/sql"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { ControlServer, serverUrl } from "../../src/ControlServer.ts"
import { MemoryStore } from "../../src/MemoryStore.ts"
import { NodeRegistry } from "../../src/NodeRegistry.ts"
import { Sessions } from "../../src/Sessions.ts"
import { type ControlHandle, TestDatabase } from "../harness.ts"

/**
 * A control plane (real HTTP, fresh database) whose services the test also reaches directly:
 * sessions with a memory key are made only by control itself (daemons), never through the API.
 */
export const memoryControl = (env: Record<string, string>) =>
  Effect.gen(function* () {
    const store = yield* (yield* TestDatabase).fresh
    const context = yield* Layer.build(
      ControlServer.pipe(
        Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({
          PAWS_HOST: "127.0.0.1",
          PAWS_PORT: "0",
          PAWS_DATA_DIR: store.dataDir,
          PAWS_DISPATCH_INTERVAL_MS: "200",
          ...(store.databaseUrl === undefined ? {} : { DATABASE_URL: store.databaseUrl, PAWS_DB_MAX_CONNECTIONS: "4" }),
          ...env,
        }))),
        Layer.provide(Layer.succeed(References.MinimumLogLevel, "Error")),
      ),
    ).pipe(Effect.orDie)
    const url = yield* serverUrl.pipe(
      Effect.provideService(HttpServer.HttpServer, Context.get(context, HttpServer.HttpServer)),
    )
    const registry = Context.get(context, NodeRegistry)
    const handle: ControlHandle = {
      url,
      adminKey: readFileSync(join(store.dataDir, "admin.key"), "utf8").trim(),
      registry,
      dataDir: store.dataDir,
    }
    return {
      handle,
      registry,
      sessions: Context.get(context, Sessions),
      memory: Context.get(context, MemoryStore),
      sql: Context.get(context, SqlClient.SqlClient),
    }
  })
