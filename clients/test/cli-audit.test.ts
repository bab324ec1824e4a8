import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { bypassingTriggers, runSql } from "../../control/test/AuditDb.ts"
import { TestPostgres } from "../../control/test/TestPostgres.ts"
import { binPath, paws, startControl } from "./support/CliProcess.ts"

describe("paws audit", () => {
  layer(TestPostgres.layer, { excludeTestServices: true, timeout: 180_000 })((it) => {
    it.effect("lists, exports JSON lines, follows new rows, verifies and names a broken row", () =>
      Effect.scoped(Effect.gen(function* () {
        const pg = yield* TestPostgres
        const databaseUrl = yield* pg.freshDatabase
        const control = yield* Effect.acquireRelease(
          Effect.promise(() =>
            startControl({ DATABASE_URL: databaseUrl, PAWS_VAULT_KEY: randomBytes(32).toString("base64") })
          ),
          (c) => Effect.promise(c.stop),
        )
        const env = {
          PAWS_URL: control.url,
          PAWS_API_KEY: readFileSync(join(control.dir, ".paws", "admin.key"), "utf8").trim(),
          PAWS_CONFIG: join(control.dir, "none.json"),
        }
        const run = (args: ReadonlyArray<string>) => Effect.promise(() => paws(args, env))
        assert.strictEqual((yield* run(["keys", "create", "--name", "ci", "--scope", "read"])).code, 0)

        const human = yield* run(["audit", "--action", "apikey.*"])
        assert.strictEqual(human.code, 0, human.stderr)
        const lines = human.stdout.trim().split("\n")
        assert.strictEqual(lines.length, 2)
        assert.match(lines[1]!, /key:\w{12}\s+apikey\.created\s+ok\s+\w{12}/)

        const exported = yield* run(["audit", "--json"])
        const rows = exported.stdout.trim().split("\n").map((l) => JSON.parse(l))
        assert.deepStrictEqual(rows.map((r) => r.action), ["apikey.created", "apikey.created", "api.keys.create"])
        assert.deepStrictEqual(rows.map((r) => r.id), [1, 2, 3])

        const bad = yield* run(["audit", "--since", "yesterday"])
        assert.strictEqual(bad.code, 1)
        assert.include(bad.stderr, "since")

        // --follow prints what is written after it started.
        const follower = spawn(process.execPath, [binPath, "audit", "--follow", "--json", "--action", "apikey.*"], {
          env: { ...process.env, ...env },
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => follower.kill("SIGTERM")))
        let followed = ""
        follower.stdout.on("data", (d) => (followed += d))
        const lineCount = () => followed.split("\n").filter((l) => l !== "").length
        while (lineCount() < 2) yield* Effect.sleep(50)
        assert.strictEqual((yield* run(["keys", "create", "--name", "later", "--scope", "read"])).code, 0)
        while (lineCount() < 3) yield* Effect.sleep(50)
        assert.strictEqual(JSON.parse(followed.trim().split("\n")[2]!).detail.name, "later")

        // --project: one project's rows; a row of another project than default says whose it is.
        assert.strictEqual((yield* run(["projects", "create", "team-x"])).code, 0)
        const teamKey = yield* run(["keys", "create", "--project", "team-x", "--name", "x", "--scope", "read"])
        assert.strictEqual(teamKey.code, 0, teamKey.stderr)
        // The team's key tries what it may not: the refused call is audited in its project.
        const refused = yield* Effect.promise(() =>
          paws(["keys", "create", "--name", "y", "--scope", "read"], { ...env, PAWS_API_KEY: teamKey.stdout.trim() })
        )
        assert.strictEqual(refused.code, 1)
        const team = yield* run(["audit", "--project", "team-x"])
        assert.strictEqual(team.code, 0, team.stderr)
        assert.match(
          team.stdout.trim(),
          /^\S+\s+key:\w{12}\s+api\.keys\.create\s+Forbidden\s+\/v1\/keys\s+project=team-x$/,
        )
        const inDefault = yield* run(["audit", "--project", "default", "--action", "api.projects.*"])
        assert.match(inDefault.stdout, /api\.projects\.create\s+ok\s+\/v1\/projects$/m)

        const ok = yield* run(["audit", "verify"])
        assert.strictEqual(ok.code, 0, ok.stderr)
        assert.match(ok.stdout, /audit chain ok: \d+ rows checked from the first row/)

        yield* runSql(
          { dataDir: control.dir, databaseUrl },
          bypassingTriggers([`UPDATE audit SET target = 'someone-else' WHERE id = 2`]),
        )
        const broken = yield* run(["audit", "verify"])
        assert.strictEqual(broken.code, 1)
        assert.include(broken.stderr, "audit chain BROKEN at row 2: its hash does not match its content")
      })))
  })
})
