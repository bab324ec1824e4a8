import { Data, Effect, Layer } from "effect"
import { statSync } from "node:fs"
import { resolve } from "node:path"
import { ControlConfig } from "./ControlConfig.ts"

/** A secret-bearing path that other users can reach: control refuses to start on it. */
export class UnsafePermissions extends Data.TaggedError("UnsafePermissions")<{ readonly message: string }> {}

/**
 * Why `path` is not private to its owner (any group/other permission bit), with the command
 * that fixes it; undefined when it is private or does not exist yet (control creates it 0700/0600).
 */
export const privatePathProblem = (path: string, kind: "directory" | "file", holds: string): string | undefined => {
  let mode: number
  try {
    mode = statSync(path).mode & 0o777
  } catch {
    return undefined
  }
  if ((mode & 0o077) === 0) return undefined
  const fix = kind === "directory" ? "700" : "600"
  return `${kind} ${resolve(path)} (${holds}) has mode ${mode.toString(8).padStart(4, "0")}: group or other users ` +
    `can reach it. Fix it with \`chmod ${fix} ${resolve(path)}\` and start again`
}

/** Fails with UnsafePermissions when `path` exists and is not private. */
export const requirePrivate = (path: string, kind: "directory" | "file", holds: string) =>
  Effect.suspend(() => {
    const problem = privatePathProblem(path, kind, holds)
    return problem === undefined ? Effect.void : Effect.fail(new UnsafePermissions({ message: problem }))
  })

/**
 * Refuses to start when PAWS_DATA_DIR exists with group/world access: it holds the embedded
 * database (sealed credentials), the vault key file and the first admin key.
 */
export const PrivateDataDir = Layer.effectDiscard(Effect.gen(function* () {
  const { dataDir } = yield* ControlConfig
  yield* requirePrivate(dataDir, "directory", "PAWS_DATA_DIR: database, vault key, admin key").pipe(Effect.orDie)
}))
