import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { randomBytes } from "node:crypto"

/**
 * A real PostgreSQL for the test suite: `PAWS_TEST_DATABASE_URL` when set, else a throwaway
 * server started from the installed binaries (Debian's /usr/lib/postgresql/N/bin or initdb
 * on PATH) in a temp dir on a random loopback port, as the `postgres` user when we are root.
 * Neither possible = the suite fails: the PostgreSQL path must never silently go untested.
 */
export class TestPostgres extends Context.Service<TestPostgres, {
  /** A URL to a new, empty database on the server. */
  readonly freshDatabase: Effect.Effect<string>
}>()("paws/test/TestPostgres") {
  static readonly layer = Layer.effect(
    TestPostgres,
    Effect.gen(function* () {
      const external = process.env["PAWS_TEST_DATABASE_URL"]
      const adminUrl = external !== undefined && external !== "" ? external : yield* startServer
      const admin = yield* PgClient.make({ url: Redacted.make(adminUrl), maxConnections: 1 }).pipe(Effect.orDie)
      return TestPostgres.of({
        freshDatabase: Effect.gen(function* () {
          const name = `paws_t_${randomBytes(6).toString("hex")}`
          yield* admin.unsafe(`CREATE DATABASE ${name}`).pipe(Effect.orDie)
          const url = new URL(adminUrl)
          url.pathname = `/${name}`
          return url.toString()
        }),
      })
    }),
  ).pipe(Layer.provide(Reactivity.layer))
}

const binDir = (): string => {
  const debian = "/usr/lib/postgresql"
  if (existsSync(debian)) {
    const versions = readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))
    for (const v of versions) if (existsSync(join(debian, v, "bin", "initdb"))) return join(debian, v, "bin")
  }
  try {
    const initdb = execFileSync("sh", ["-c", "command -v initdb"], { encoding: "utf8" }).trim()
    if (initdb !== "") return initdb.replace(/\/initdb$/, "")
  } catch {
    // fall through
  }
  throw new Error(
    "real PostgreSQL tests need either PAWS_TEST_DATABASE_URL or the PostgreSQL server binaries " +
      "(apt-get install postgresql, or initdb + postgres on PATH); refusing to skip them",
  )
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })

const startServer = Effect.gen(function* () {
  const bin = binDir()
  const root = process.getuid?.() === 0
  const dir = mkdtempSync(join(tmpdir(), "paws-test-pg-"))
  const asPostgres = (file: string, args: Array<string>): [string, Array<string>] =>
    root ? ["setpriv", ["--reuid=postgres", "--regid=postgres", "--clear-groups", "--", file, ...args]] : [file, args]
  if (root) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim())
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim())
    chownSync(dir, uid, gid)
  }
  const password = randomBytes(16).toString("hex")
  const pwfile = join(dir, "pw")
  writeFileSync(pwfile, password, { mode: 0o644 })
  const data = join(dir, "data")
  const [initCmd, initArgs] = asPostgres(join(bin, "initdb"), [
    "-D",
    data,
    "-U",
    "postgres",
    "--pwfile",
    pwfile,
    "--auth-host=scram-sha-256",
    "--auth-local=trust",
    "--no-sync",
    "-E",
    "UTF8",
    "--locale=C",
  ])
  execFileSync(initCmd, initArgs, { stdio: "ignore" })
  rmSync(pwfile)
  const port = yield* Effect.promise(freePort)
  // A test server: durability off for speed (the data dir is thrown away), unless a benchmark
  // asks for production behaviour with PAWS_TEST_PG_DURABLE=1 (fsync, synchronous commit).
  const fast = process.env["PAWS_TEST_PG_DURABLE"] === "1"
    ? []
    : ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
  const settings = ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", ...fast]
  const [cmd, args] = asPostgres(join(bin, "postgres"), ["-D", data, "-k", dir, "-p", String(port), ...settings])
  const child: ChildProcess = yield* Effect.acquireRelease(
    Effect.sync(() => spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] })),
    (child) =>
      Effect.promise(() =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve()
          child.once("exit", () => resolve())
          child.kill("SIGINT") // fast shutdown; the pid is the postgres postmaster itself (setpriv execs)
        })
      ).pipe(Effect.andThen(Effect.sync(() => rmSync(dir, { recursive: true, force: true })))),
  )
  // If the test process exits without running finalizers, do not leave a server behind.
  const orphanGuard = () => child.kill("SIGKILL")
  process.once("exit", orphanGuard)
  yield* Effect.addFinalizer(() => Effect.sync(() => process.off("exit", orphanGuard)))
  let stderr = ""
  child.stderr?.on("data", (d) => (stderr += String(d)))
  // Ready when the postmaster writes "ready" into postmaster.pid.
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`postgres exited: ${stderr}`)
    const pidFile = join(data, "postmaster.pid")
    if (existsSync(pidFile) && readFileSync(pidFile, "utf8").split("\n")[7]?.trim() === "ready") {
      return `postgres://postgres:${password}@127.0.0.1:${port}/postgres`
    }
    yield* Effect.sleep(50)
  }
  throw new Error(`postgres did not become ready: ${stderr}`)
})
