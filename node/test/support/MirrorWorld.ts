import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { ImageBuilder } from "../../src/image/ImageBuilder.ts"
import { runHostCommand } from "../../src/HostCommand.ts"
import { NodeServices } from "../../src/main.ts"
import { makeNetns } from "./Netns.ts"
import { testConfig, testDataDir, testImageLayer } from "./TestImage.ts"
import { TestWorld } from "./TestNode.ts"

const mirrorChild = fileURLToPath(new URL("./mirror-child.ts", import.meta.url))

export interface MirrorRequest {
  readonly host: string
  readonly method: string
  readonly url: string
  readonly apiKey?: string
  readonly authorization?: string
}

/** What the mirror stand-in was asked for. */
export class MirrorLog extends Context.Service<MirrorLog, { readonly received: Array<MirrorRequest> }>()(
  "paws/test/MirrorLog",
) {}

/** The small real package the stand-in serves (depends on libc6 only). */
export const mirrorPackage = "hello"

/**
 * A flat apt repository of real .debs under the test data dir (`apt-get download`, cached), indexed
 * by apt-ftparchive; guests use it as `deb [trusted=yes] https://deb.debian.org/paws-mirror ./`.
 */
const mirrorRoot = Effect.gen(function* () {
  const root = path.join(testDataDir, "apt-mirror")
  const repo = path.join(root, "paws-mirror")
  yield* Effect.promise(() => fs.mkdir(repo, { recursive: true }))
  const has = (yield* Effect.promise(() => fs.readdir(repo))).some((f) => f.startsWith(`${mirrorPackage}_`))
  if (!has) yield* runHostCommand("apt-get", ["download", "-q", mirrorPackage], { cwd: repo })
  const packages = yield* runHostCommand("apt-ftparchive", ["packages", "."], { cwd: repo })
  yield* Effect.promise(() => fs.writeFile(path.join(repo, "Packages"), packages.stdout))
  const release = yield* runHostCommand("apt-ftparchive", ["release", "."], { cwd: repo })
  yield* Effect.promise(() => fs.writeFile(path.join(repo, "Release"), release.stdout))
  return root
}).pipe(Effect.orDie)

export const mirrorIn = (netns: string, root: string, toolCommand: string | undefined): Effect.Effect<
  { readonly port: number; readonly caPem: string; readonly received: Array<MirrorRequest> },
  never,
  Scope.Scope
> =>
  Effect.acquireRelease(
    Effect.callback<{ port: number; caPem: string; received: Array<MirrorRequest>; kill: () => void }>((resume) => {
      const child = spawn("ip", ["netns", "exec", netns, process.execPath, mirrorChild], {
        stdio: ["pipe", "pipe", "inherit"],
      })
      const received: Array<MirrorRequest> = []
      child.stdin!.write(JSON.stringify({ root, toolCommand }) + "\n")
      createInterface({ input: child.stdout! }).on("line", (line) => {
        const msg = JSON.parse(line) as { port?: number; caPem?: string; received?: MirrorRequest }
        if (msg.received) received.push(msg.received)
        else resume(Effect.succeed({ port: msg.port!, caPem: msg.caPem!, received, kill: () => child.kill("SIGKILL") }))
      })
      child.once("exit", (code) => resume(Effect.die(new Error(`mirror child exited ${code}`))))
    }),
    (u) => Effect.sync(u.kill),
  )

/**
 * A node in a fresh netns whose proxies reach the mirror stand-in as deb.debian.org and the fake
 * Anthropic API (whose Bash tool turn runs `toolCommand`) as api.anthropic.com; the named
 * catalogue images are built (or found cached) first.
 */
export const mirrorNodeLayer = (
  images: ReadonlyArray<string>,
  extra: Record<string, string> = {},
  toolCommand?: string,
) =>
  Layer.unwrap(Effect.gen(function* () {
    for (const name of images) {
      yield* ImageBuilder.use((b) => b.build(name)).pipe(Effect.provide(testImageLayer()), Effect.orDie)
    }
    const netns = yield* makeNetns("img")
    const mirror = yield* mirrorIn(netns, yield* mirrorRoot, toolCommand)
    const upstream = {
      caBundlePem: mirror.caPem,
      resolve: {
        "deb.debian.org": { address: "127.0.0.1", port: mirror.port },
        "api.anthropic.com": { address: "127.0.0.1", port: mirror.port },
      },
      allowPrivateUpstreams: true,
    }
    const config = testConfig({
      PAWS_NODE_NETNS: netns,
      PAWS_NODE_TOKEN: "test-node-token",
      PAWS_NODE_POOL: "172.16.0.0/24",
      PAWS_NODE_MAX_VMS: "2",
      PAWS_NODE_PROXY_UPSTREAM: JSON.stringify(upstream),
      PAWS_NODE_DEFAULT_SNAPSHOT: "0",
      ...extra,
    })
    return NodeServices.pipe(
      Layer.provideMerge(Layer.succeed(MirrorLog, MirrorLog.of({ received: mirror.received }))),
      Layer.provideMerge(
        Layer.succeed(TestWorld, TestWorld.of({ netns, upstreamCaPem: mirror.caPem, received: [], gitAuth: "" })),
      ),
      Layer.provide(config),
    )
  }))
