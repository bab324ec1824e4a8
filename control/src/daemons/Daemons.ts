import {
  DaemonExists,
  type DaemonLimits,
  DaemonNotFound,
  type DaemonPatch,
  type DaemonSaved,
  type DaemonSpec,
  type DaemonView,
  InvalidRequest,
  type SessionSpec,
  sessionSpecProblems,
  type Trigger,
} from "@paws/core"
import { Context, Effect, Layer } from "effect"
import { randomBytes } from "node:crypto"
import { ControlConfig } from "../ControlConfig.ts"
import { nulProblems } from "../Sessions.ts"
import { SnapshotProjects } from "../SnapshotProjects.ts"
import { Vault } from "../Vault.ts"
import { DaemonConfig } from "./DaemonConfig.ts"
import { sessionPart, triggerProblems } from "./DaemonRules.ts"
import { type DaemonBody, DaemonStore, type StoredDaemon } from "./DaemonStore.ts"

type Credentials = NonNullable<NonNullable<SessionSpec["network"]>["credentials"]>

export const notFound = (name: string) => new DaemonNotFound({ daemon: name, message: `no daemon ${name}` })

const signed = (t: Trigger) => t.kind === "webhook" || t.kind === "github"

/** A null limit means "no limit": stored as absent, so GET shows only the limits that apply. */
const withoutNulls = (limits: DaemonLimits): DaemonLimits =>
  Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== null && v !== undefined)) as DaemonLimits

/**
 * Daemon definitions: validated like a session spec plus their triggers; credential values and
 * trigger signing secrets sealed in the vault (bound to the daemon's name), secrets shown once.
 */
export class Daemons extends Context.Service<Daemons, {
  /** Every operation is within one project: another project's daemon is a 404, like an unknown name. */
  readonly create: (spec: DaemonSpec, project: string) => Effect.Effect<DaemonSaved, InvalidRequest | DaemonExists>
  readonly update: (
    name: string,
    patch: DaemonPatch,
    project: string,
  ) => Effect.Effect<DaemonSaved, InvalidRequest | DaemonNotFound>
  readonly get: (name: string, project: string) => Effect.Effect<DaemonView, DaemonNotFound>
  /** The stored daemon (for an invocation) of `project`. */
  readonly stored: (name: string, project: string) => Effect.Effect<StoredDaemon, DaemonNotFound>
  readonly list: (project: string) => Effect.Effect<ReadonlyArray<DaemonView>>
  readonly remove: (name: string, project: string) => Effect.Effect<void, DaemonNotFound>
  /** The daemon's session spec with its credential values, for an invocation. */
  readonly sessionSpec: (d: StoredDaemon) => Effect.Effect<SessionSpec>
  /** The signing secret of a webhook or GitHub trigger. */
  readonly triggerSecret: (d: StoredDaemon, trigger: string) => Effect.Effect<string | undefined>
}>()("paws/control/Daemons") {
  static readonly layer = Layer.effect(
    Daemons,
    Effect.gen(function* () {
      const { limits } = yield* ControlConfig
      const config = yield* DaemonConfig
      const store = yield* DaemonStore
      const vault = yield* Vault
      const snapshotProjects = yield* SnapshotProjects

      const credContext = (name: string) => `daemon:${name}:credentials`
      const secretContext = (name: string) => `daemon:${name}:secrets`

      const validate = Effect.fnUntraced(function* (d: Omit<DaemonSpec, "name">, project: string) {
        const session: SessionSpec = { ...sessionPart(d), ...(d.network === undefined ? {} : { network: d.network }) }
        const problems = [
          ...sessionSpecProblems(session, limits),
          ...nulProblems(session),
          ...triggerProblems(d.triggers ?? [], config),
          // Its sessions run in its project: another project's snapshot is as unknown there.
          ...yield* snapshotProjects.problems(d.snapshot, project, "snapshot"),
        ]
        return yield* problems.length === 0 ? Effect.void : Effect.fail(
          new InvalidRequest({ message: problems.map((p) => `${p.path}: ${p.message}`).join("; "), issues: problems }),
        )
      })

      /** Body to store (header names only) and the sealed credential values. */
      const split = (name: string, d: Omit<DaemonSpec, "name">) => {
        const creds = d.network?.credentials
        const body: DaemonBody = {
          ...sessionPart(d),
          ...(d.network === undefined ? {} : {
            network: {
              allowOut: d.network.allowOut,
              ...(d.network.allowWildcardCredential === undefined
                ? {}
                : { allowWildcardCredential: d.network.allowWildcardCredential }),
              ...(creds === undefined ? {} : {
                credentials: Object.fromEntries(
                  Object.entries(creds).map(([host, rule]) => [host, { headers: Object.keys(rule.headers) }]),
                ),
              }),
            },
          }),
          triggers: d.triggers ?? [],
          concurrency: d.concurrency ?? "queue",
          enabled: d.enabled ?? true,
          ...(d.memory === undefined ? {} : { memory: d.memory }),
          ...(d.limits === undefined ? {} : { limits: withoutNulls(d.limits) }),
        } as DaemonBody
        const sealed = creds === undefined || Object.keys(creds).length === 0
          ? null
          : vault.seal(JSON.stringify(creds), credContext(name))
        return { body, sealed }
      }

      const openSecrets = (d: StoredDaemon) =>
        d.secrets === null
          ? Effect.succeed({} as Record<string, string>)
          : vault.open(d.secrets, secretContext(d.view.name)).pipe(
            Effect.map((s) => JSON.parse(s) as Record<string, string>),
            Effect.orDie,
          )

      /** Keeps the secrets of triggers that stay (same name and kind); new signed triggers get a fresh one. */
      const secretsFor = (
        triggers: ReadonlyArray<Trigger>,
        before: ReadonlyArray<Trigger>,
        old: Record<string, string>,
      ) => {
        const all: Record<string, string> = {}
        const fresh: Record<string, string> = {}
        for (const t of triggers.filter(signed)) {
          const kept = before.find((b) => b.name === t.name && b.kind === t.kind) === undefined
            ? undefined
            : old[t.name]
          const secret = kept ?? randomBytes(32).toString("base64url")
          all[t.name] = secret
          if (kept === undefined) fresh[t.name] = secret
        }
        return { all, fresh }
      }

      const sealSecrets = (name: string, all: Record<string, string>) =>
        Object.keys(all).length === 0 ? null : vault.seal(JSON.stringify(all), secretContext(name))

      const get = (name: string, project: string) =>
        Effect.flatMap(
          store.get(name),
          (d) => (d === undefined || d.project !== project ? Effect.fail(notFound(name)) : Effect.succeed(d)),
        )

      const create = Effect.fn("Daemons.create")(function* (spec: DaemonSpec, project: string) {
        const { name, ...rest } = spec
        yield* validate(rest, project)
        const { body, sealed } = split(name, rest)
        const { all, fresh } = secretsFor(body.triggers, [], {})
        // Names are instance-wide (hooks are addressed by name), so a name taken in another project is a 409 too.
        const inserted = yield* store.insert(name, project, body, sealed, sealSecrets(name, all))
        if (!inserted) return yield* new DaemonExists({ daemon: name, message: `a daemon named ${name} exists` })
        yield* Effect.logInfo("daemon created").pipe(Effect.annotateLogs({ daemon: name, project }))
        return { daemon: (yield* Effect.orDie(get(name, project))).view, secrets: fresh }
      })

      const update = Effect.fn("Daemons.update")(function* (name: string, patch: DaemonPatch, project: string) {
        const before = yield* get(name, project)
        const old = before.view
        const merged: Omit<DaemonSpec, "name"> = {
          ...(old.snapshot === undefined ? {} : { snapshot: old.snapshot }),
          workload: old.workload,
          ...(old.resources === undefined ? {} : { resources: old.resources }),
          ...(old.timeoutMs === undefined ? {} : { timeoutMs: old.timeoutMs }),
          ...(old.metadata === undefined ? {} : { metadata: old.metadata }),
          ...(old.nodeSelector === undefined ? {} : { nodeSelector: old.nodeSelector }),
          ...(old.mcp === undefined ? {} : { mcp: old.mcp }),
          ...(old.memory === undefined ? {} : { memory: old.memory }),
          ...(old.limits === undefined ? {} : { limits: old.limits }),
          triggers: old.triggers,
          concurrency: old.concurrency,
          enabled: old.enabled,
          ...patch,
        }
        yield* validate(merged, project)
        // Network not given: the stored one, with its sealed values, stays as it is.
        const { body, sealed } = split(name, merged)
        const kept = patch.network === undefined
          ? {
            body: { ...body, ...(old.network === undefined ? {} : { network: old.network }) },
            sealed: before.credentials,
          }
          : { body, sealed }
        const { all, fresh } = secretsFor(body.triggers, old.triggers, yield* openSecrets(before))
        const updated = yield* store.update(name, kept.body as DaemonBody, kept.sealed, sealSecrets(name, all))
        if (!updated) return yield* notFound(name)
        // A cron or watch whose definition changed starts afresh (a new URL's first poll is a baseline).
        const same = (t: Trigger) => body.triggers.some((n) => JSON.stringify(n) === JSON.stringify(t))
        yield* store.resetTriggers(name, old.triggers.filter((t) => !same(t)).map((t) => t.name))
        return { daemon: (yield* Effect.orDie(get(name, project))).view, secrets: fresh }
      })

      const sessionSpec = (d: StoredDaemon) =>
        Effect.gen(function* () {
          const v = d.view
          const creds = d.credentials === null
            ? undefined
            : JSON.parse(yield* Effect.orDie(vault.open(d.credentials, credContext(v.name)))) as Credentials
          const spec: SessionSpec = {
            ...sessionPart(v),
            ...(v.network === undefined ? {} : {
              network: {
                allowOut: v.network.allowOut,
                ...(creds === undefined ? {} : { credentials: creds }),
                ...(v.network.allowWildcardCredential === undefined
                  ? {}
                  : { allowWildcardCredential: v.network.allowWildcardCredential }),
              },
            }),
          }
          return spec
        })

      return Daemons.of({
        create,
        update,
        get: (name, project) => Effect.map(get(name, project), (d) => d.view),
        stored: get,
        list: (project) => Effect.map(store.listIn(project), (ds) => ds.map((d) => d.view)),
        remove: (name, project) =>
          get(name, project).pipe(
            Effect.andThen(store.remove(name)),
            Effect.flatMap((removed) => (removed ? Effect.void : Effect.fail(notFound(name)))),
          ),
        sessionSpec,
        triggerSecret: (d, trigger) => Effect.map(openSecrets(d), (s) => s[trigger]),
      })
    }),
  )
}
