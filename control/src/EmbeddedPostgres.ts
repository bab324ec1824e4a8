import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { Effect } from "effect"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

/**
 * PGlite in this process, served over a unix socket so `@effect/sql-pg` can reach it like
 * any PostgreSQL. PGlite runs one query at a time, so the client must use one connection.
 * The socket sits in the 0700 data dir (or a private temp dir when that path is too long
 * for a unix socket), so no other local user can connect.
 */
export const startEmbeddedPostgres = Effect.fn("EmbeddedPostgres.start")(function* (dataDir: string) {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const db = yield* Effect.promise(() => PGlite.create(join(dataDir, "pgdata")))
  let socketDir = dataDir
  let ownSocketDir = false
  if (join(dataDir, "pg.sock").length > 100) {
    socketDir = mkdtempSync(join(tmpdir(), "paws-pg-"))
    ownSocketDir = true
  }
  const path = join(socketDir, "pg.sock")
  rmSync(path, { force: true }) // a stale socket from a crashed run
  const server = new PGLiteSocketServer({ db, path, maxConnections: 1 })
  yield* Effect.acquireRelease(
    Effect.promise(() => server.start()),
    () =>
      Effect.promise(async () => {
        await server.stop()
        await db.close()
        if (ownSocketDir) rmSync(socketDir, { recursive: true, force: true })
      }),
  )
  return { path }
})
