import { ConfigProvider, Console, Context, Effect, Layer, References } from "effect"
import { Command } from "effect/cli"
import { HttpServer } from "effect/http"
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { withProgress } from "../Progress.ts"

const since = (started: number) => `${((Date.now() - started) / 1000).toFixed(1)} s`

/**
 * `paws up`: everything on one machine. Control (with the embedded database unless
 * DATABASE_URL is set) and, as root, a local node in the same process that calls home to it
 * with a node token kept 0600 in the data dir (reused across restarts). Without root, control
 * alone: sessions wait until a node connects.
 */
export const up = Command.make("up", {}, () =>
  Effect.scoped(Effect.gen(function* () {
    const { ControlConfig, ControlLogging, ControlServer, NodeTokens, serverUrl } = yield* Effect.promise(() =>
      import("@paws/control")
    )
    yield* Console.error("starting paws control (the first start initialises the embedded database: ~15 s)…")
    const controlStarted = Date.now()
    const control = yield* withProgress(
      "paws control",
      () => Layer.build(ControlServer.pipe(Layer.provide(ControlLogging))),
      { initialPhase: "starting (database, migrations, API)" },
    )
    const url = yield* serverUrl.pipe(
      Effect.provideService(HttpServer.HttpServer, Context.get(control, HttpServer.HttpServer)),
    )
    const { dataDir } = Context.get(control, ControlConfig)
    const adminKey = resolve(join(dataDir, "admin.key"))
    yield* Console.error(`paws control: ${url}  (API ${url}/v1, docs ${url}/docs; started in ${since(controlStarted)})`)
    yield* Console.error(`admin API key: ${adminKey} (the CLI finds it when run from this directory)`)

    if (process.getuid?.() !== 0) {
      yield* Console.error(
        "not root: no local node, so sessions will wait in the queue until a node connects. Start one with:\n" +
          `  paws nodes token create --name my-node     # prints a node token\n` +
          `  sudo PAWS_CONTROL_URL=${url} PAWS_NODE_TOKEN=<token> paws node`,
      )
      return yield* Effect.never
    }

    // The local node's token, bound to its node id: reused while valid and bound to this id (a
    // changed PAWS_NODE_ID or hostname would be refused with it), else created and stored 0600
    // beside the admin key.
    const { nodeSettings } = yield* Effect.promise(() => import("@paws/node"))
    const nodeId = yield* nodeSettings.id.config
    const tokens = Context.get(control, NodeTokens)
    const tokenFile = resolve(join(dataDir, "node.token"))
    const stored = existsSync(tokenFile) ? readFileSync(tokenFile, "utf8").trim() : ""
    let token = stored
    const storedId = stored === "" ? undefined : yield* tokens.verify(stored)
    const usable = storedId !== undefined && (yield* tokens.claim(storedId, nodeId))._tag === "Granted"
    if (!usable) {
      token = (yield* tokens.create("local node (paws up)", { nodeId })).token
      mkdirSync(dataDir, { recursive: true, mode: 0o700 })
      writeFileSync(tokenFile, token + "\n", { mode: 0o600 })
      chmodSync(tokenFile, 0o600)
    }

    const nodeConfig = ConfigProvider.layer(ConfigProvider.fromEnvRecord({
      ...process.env as Record<string, string>,
      PAWS_DATA_DIR: dataDir,
      PAWS_CONTROL_URL: url,
      PAWS_NODE_TOKEN: token,
    }))
    const { ImageBuilder } = yield* Effect.promise(() => import("@paws/node"))
    const started = Date.now()
    yield* Console.error("guest image: checking (the first build downloads Debian packages and takes minutes)…")
    const image = yield* withProgress(
      "guest image",
      (onProgress) => ImageBuilder.use((b) => b.build(undefined, { onProgress })),
      { initialPhase: "checking" },
    ).pipe(
      Effect.provide(ImageBuilder.layer.pipe(Layer.provide(nodeConfig))),
      // the progress line says what the builder's info logs would
      Effect.provideService(References.MinimumLogLevel, "Warn"),
    )
    yield* Console.error(`guest image: ready in ${since(started)} (${image.dir})`)
    const { NodeApp } = yield* Effect.promise(() => import("@paws/node"))
    const nodeStarted = Date.now()
    yield* withProgress(
      "local node",
      () => Layer.build(NodeApp.pipe(Layer.provide(nodeConfig), Layer.provide(ControlLogging))),
      { initialPhase: "starting (reconcile leftovers, network, call home)" },
    )
    yield* Console.error(
      `local node: started in ${since(nodeStarted)}; it calls home to this control plane (see \`paws nodes\`)`,
    )
    return yield* Effect.never
  }))).pipe(
    Command.withDescription(
      "Run control + embedded database, and (as root) a local node, in one process; Ctrl-C stops everything",
    ),
  )
