import { DaemonView } from "@paws/core"
import { Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { iso, json, rowDecoder } from "../Rows.ts"

/** A daemon row: the view (no secrets) and its vault-sealed credential values and trigger secrets. */
export interface StoredDaemon {
  readonly view: DaemonView
  readonly project: string
  readonly credentials: string | null
  readonly secrets: string | null
}

/** What is written: the view without name, project (a column of its own) and timestamps. */
export type DaemonBody = Omit<DaemonView, "name" | "project" | "createdAt" | "updatedAt">

interface DaemonRow {
  readonly name: string
  readonly spec: unknown
  readonly credentials: string | null
  readonly secrets: string | null
  readonly project: string
  readonly created_at: unknown
  readonly updated_at: unknown
}

const decodeView = rowDecoder(DaemonView, "daemon")
const toStored = (row: DaemonRow): StoredDaemon => ({
  view: decodeView({
    ...(json(row.spec) as object),
    name: row.name,
    project: row.project,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  }),
  project: row.project,
  credentials: row.credentials,
  secrets: row.secrets,
})

const isUniqueViolation = (e: unknown) => /duplicate key|unique/i.test(String((e as { cause?: unknown }).cause ?? e))

/** Daemon definitions in PostgreSQL, and the bookkeeping of their triggers. */
export class DaemonStore extends Context.Service<DaemonStore, {
  /** False when the name is taken. */
  readonly insert: (
    name: string,
    project: string,
    body: DaemonBody,
    credentials: string | null,
    secrets: string | null,
  ) => Effect.Effect<boolean>
  readonly update: (
    name: string,
    body: DaemonBody,
    credentials: string | null,
    secrets: string | null,
  ) => Effect.Effect<boolean>
  readonly get: (name: string) => Effect.Effect<StoredDaemon | undefined>
  /** Every project's daemons (the trigger loops), or one project's. */
  readonly list: Effect.Effect<ReadonlyArray<StoredDaemon>>
  readonly listIn: (project: string) => Effect.Effect<ReadonlyArray<StoredDaemon>>
  readonly remove: (name: string) => Effect.Effect<boolean>
  /** Forgets the cron/watch bookkeeping of triggers that changed or went: they start afresh. */
  readonly resetTriggers: (daemon: string, triggers: ReadonlyArray<string>) => Effect.Effect<void>
  /** The daemon's sessions that are pending, starting or running, oldest first. */
  readonly activeSessions: (daemon: string) => Effect.Effect<ReadonlyArray<string>>
  /** The session a daemon already created under this idempotency key (a retried cron tick), if any. */
  readonly sessionByKey: (
    daemon: string,
    key: string,
  ) => Effect.Effect<{ readonly id: string; readonly status: string } | undefined>
  /** Records a delivery (webhook signature, GitHub delivery id); false when it was seen before. */
  readonly firstDelivery: (daemon: string, trigger: string, delivery: string) => Effect.Effect<boolean>
  /** Forgets webhook signatures older than `seconds` (outside any replay window), GitHub ids after 30 days. */
  readonly pruneDeliveries: (seconds: number) => Effect.Effect<void>
  readonly triggerState: (
    daemon: string,
    trigger: string,
  ) => Effect.Effect<{ readonly lastTick: Date | null; readonly lastValue: string | null } | undefined>
  /**
   * Moves a cron trigger's last tick forward from `from` (compare-and-set), noting what is to be
   * done for it (`fire:N`, `skip`); false if another replica moved it first.
   */
  readonly advanceTick: (
    daemon: string,
    trigger: string,
    from: Date | null,
    to: Date,
    note: string,
  ) => Effect.Effect<boolean>
  /** Notes a tick's invocation as done (it had been noted `fire:N`). */
  readonly tickFired: (daemon: string, trigger: string, tick: Date) => Effect.Effect<void>
  /** Stores a watch's value; false if it was already that (another replica saw the change first). */
  readonly changeValue: (daemon: string, trigger: string, value: string) => Effect.Effect<boolean>
  /** Takes or renews the lease `name` for `ms`; false while another holder's lease runs. */
  readonly lease: (name: string, holder: string, ms: number) => Effect.Effect<boolean>
}>()("paws/control/DaemonStore") {
  static readonly layer = Layer.effect(
    DaemonStore,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient

      const insert = (
        name: string,
        project: string,
        body: DaemonBody,
        credentials: string | null,
        secrets: string | null,
      ) =>
        sql`INSERT INTO daemons (name, project, spec, credentials, secrets)
          VALUES (${name}, ${project}, ${JSON.stringify(body)}::jsonb, ${credentials}, ${secrets})
          ON CONFLICT (name) DO NOTHING RETURNING name`.pipe(
          Effect.map((rows) => rows.length > 0),
          Effect.catch((e) => (isUniqueViolation(e) ? Effect.succeed(false) : Effect.die(e))),
        )

      const update = (name: string, body: DaemonBody, credentials: string | null, secrets: string | null) =>
        sql`UPDATE daemons SET spec = ${JSON.stringify(body)}::jsonb, credentials = ${credentials},
            secrets = ${secrets}, updated_at = now()
          WHERE name = ${name} RETURNING name`.pipe(Effect.map((rows) => rows.length > 0), Effect.orDie)

      const get = (name: string) =>
        sql<DaemonRow>`SELECT * FROM daemons WHERE name = ${name}`.pipe(
          Effect.map((rows) => (rows[0] === undefined ? undefined : toStored(rows[0]))),
          Effect.orDie,
        )

      const list = sql<DaemonRow>`SELECT * FROM daemons ORDER BY name`.pipe(
        Effect.map((rows) => rows.map(toStored)),
        Effect.orDie,
      )
      const listIn = (project: string) =>
        sql<DaemonRow>`SELECT * FROM daemons WHERE project = ${project} ORDER BY name`.pipe(
          Effect.map((rows) => rows.map(toStored)),
          Effect.orDie,
        )

      const remove = (name: string) =>
        Effect.gen(function* () {
          const rows = yield* sql`DELETE FROM daemons WHERE name = ${name} RETURNING name`
          yield* sql`DELETE FROM daemon_trigger_state WHERE daemon = ${name}`
          yield* sql`DELETE FROM daemon_deliveries WHERE daemon = ${name}`
          return rows.length > 0
        }).pipe(Effect.orDie)

      const resetTriggers = (daemon: string, triggers: ReadonlyArray<string>) =>
        triggers.length === 0 ? Effect.void : sql`DELETE FROM daemon_trigger_state
          WHERE daemon = ${daemon} AND trigger IN ${sql.in(triggers)}`.pipe(Effect.asVoid, Effect.orDie)

      const activeSessions = (daemon: string) =>
        sql<{ id: string }>`SELECT id FROM sessions WHERE daemon = ${daemon}
          AND status IN ('pending', 'starting', 'running') ORDER BY id`.pipe(
          Effect.map((rows) => rows.map((r) => String(r.id))),
          Effect.orDie,
        )

      const sessionByKey = (daemon: string, key: string) =>
        sql<{ id: string; status: string }>`SELECT id, status FROM sessions
          WHERE key_id = ${"daemon:" + daemon} AND idempotency_key = ${key}`.pipe(
          Effect.map((
            rows,
          ) => (rows[0] === undefined ? undefined : { id: String(rows[0].id), status: rows[0].status })),
          Effect.orDie,
        )

      const firstDelivery = (daemon: string, trigger: string, delivery: string) =>
        sql`INSERT INTO daemon_deliveries (daemon, trigger, delivery) VALUES (${daemon}, ${trigger}, ${delivery})
          ON CONFLICT DO NOTHING RETURNING delivery`.pipe(Effect.map((rows) => rows.length > 0), Effect.orDie)

      const pruneDeliveries = (seconds: number) =>
        // A webhook signature only needs keeping while its timestamp is in the window; GitHub may redeliver
        // a delivery (same id) days later, so those are kept for 30 days.
        sql`DELETE FROM daemon_deliveries WHERE received_at < now() - make_interval(secs => ${seconds})
          AND (delivery NOT LIKE 'github:%' OR received_at < now() - interval '30 days')`.pipe(
          Effect.asVoid,
          Effect.orDie,
        )

      const triggerState = (daemon: string, trigger: string) =>
        sql<{ last_tick: unknown; last_value: string | null }>`SELECT last_tick, last_value
          FROM daemon_trigger_state WHERE daemon = ${daemon} AND trigger = ${trigger}`.pipe(
          Effect.map((rows) => {
            const r = rows[0]
            if (r === undefined) return undefined
            const tick = iso(r.last_tick)
            return { lastTick: tick === null ? null : new Date(tick), lastValue: r.last_value }
          }),
          Effect.orDie,
        )

      const advanceTick = (daemon: string, trigger: string, from: Date | null, to: Date, note: string) =>
        (from === null
          ? sql`INSERT INTO daemon_trigger_state (daemon, trigger, last_tick, last_value)
              VALUES (${daemon}, ${trigger}, ${to}, ${note}) ON CONFLICT DO NOTHING RETURNING daemon`
          : sql`UPDATE daemon_trigger_state SET last_tick = ${to}, last_value = ${note}, updated_at = now()
              WHERE daemon = ${daemon} AND trigger = ${trigger} AND last_tick = ${from} RETURNING daemon`).pipe(
            Effect.map((rows) => rows.length > 0),
            Effect.orDie,
          )

      const tickFired = (daemon: string, trigger: string, tick: Date) =>
        sql`UPDATE daemon_trigger_state SET last_value = 'fired'
          WHERE daemon = ${daemon} AND trigger = ${trigger} AND last_tick = ${tick}`.pipe(Effect.asVoid, Effect.orDie)

      const changeValue = (daemon: string, trigger: string, value: string) =>
        sql`INSERT INTO daemon_trigger_state (daemon, trigger, last_value) VALUES (${daemon}, ${trigger}, ${value})
          ON CONFLICT (daemon, trigger) DO UPDATE SET last_value = EXCLUDED.last_value, updated_at = now()
            WHERE daemon_trigger_state.last_value IS DISTINCT FROM EXCLUDED.last_value
          RETURNING daemon`.pipe(Effect.map((rows) => rows.length > 0), Effect.orDie)

      const lease = (name: string, holder: string, ms: number) =>
        sql`INSERT INTO daemon_leases (name, holder, expires_at)
          VALUES (${name}, ${holder}, now() + make_interval(secs => ${ms / 1000}))
          ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
            WHERE daemon_leases.holder = EXCLUDED.holder OR daemon_leases.expires_at < now()
          RETURNING name`.pipe(Effect.map((rows) => rows.length > 0), Effect.orDie)

      return DaemonStore.of({
        insert,
        update,
        get,
        list,
        listIn,
        remove,
        resetTriggers,
        activeSessions,
        sessionByKey,
        firstDelivery,
        pruneDeliveries,
        triggerState,
        advanceTick,
        tickFired,
        changeValue,
        lease,
      })
    }),
  )
}
