import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { ImageBuildError } from "./GuestImage.ts"
import { runHostCommand } from "../HostCommand.ts"

export interface NpmSpec {
  readonly name: string
  readonly version: string
}

/** "name@1.2.3" / "@scope/name@1.2.3"; guest images take exact versions only, so the hash pins them. */
export const parseNpmSpec = (spec: string): NpmSpec | undefined => {
  const m = /^((?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*)@(\d+\.\d+\.\d+(?:[-+][\w.-]+)?)$/.exec(spec)
  return m ? { name: m[1]!, version: m[2]! } : undefined
}

/** The file `npm pack` writes for a package: scope's "@" dropped, "/" → "-". */
const tarballName = (p: NpmSpec) => `${p.name.replace(/^@/, "").replace("/", "-")}-${p.version}.tgz`

/** `npm pack` (the ordinary registry client) whatever the cache lacks; returns tarball paths in order. */
export const stageNpmPackages = Effect.fn("NpmPackages.stage")(
  function* (cache: string, specs: ReadonlyArray<string>) {
    yield* Effect.promise(() => fs.mkdir(cache, { recursive: true }))
    const out: Array<string> = []
    for (const spec of specs) {
      const p = parseNpmSpec(spec)
      if (p === undefined) {
        return yield* new ImageBuildError({ message: `npm package "${spec}" needs an exact version (name@1.2.3)` })
      }
      const file = path.join(cache, tarballName(p))
      const have = yield* Effect.promise(() => fs.access(file).then(() => true, () => false))
      if (!have) {
        yield* runHostCommand("npm", ["pack", "--silent", "--pack-destination", cache, spec]).pipe(
          Effect.mapError((e) => new ImageBuildError({ message: `npm pack ${spec}: ${e.stderr.slice(-500)}` })),
        )
      }
      out.push(file)
    }
    return out
  },
)
