import { Context, Effect, Layer, Option } from "effect"
import { HostCommand } from "../HostCommand.ts"
import { netnsProcesses } from "./NetnsProcesses.ts"
import { aliasPrefix, isPawsTable, isPawsTap, sessionEnvVar, sessionIdOfTable } from "./Naming.ts"

/** What one reconcile pass removed. */
export interface Reconciled {
  readonly taps: ReadonlyArray<string>
  readonly tables: ReadonlyArray<string>
  readonly pids: ReadonlyArray<number>
}

export interface LabelledProcess {
  readonly pid: number
  readonly sessionId: string
}

const qemuNamePattern = /^paws-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:,|$)/

/** Processes in the node's netns labelled with a session: env `PAWS_SESSION_ID` (proxies), `-name paws-<id>` (QEMU). */
export const labelledProcesses = (netns: Option.Option<string>): Effect.Effect<ReadonlyArray<LabelledProcess>> =>
  Effect.flatMap(netnsProcesses(netns), (processes) =>
    Effect.promise(async () => {
      const found: Array<LabelledProcess> = []
      for (const p of processes) {
        const label = p.env.find((kv) => kv.startsWith(`${sessionEnvVar}=`))
        if (label !== undefined) {
          found.push({ pid: p.pid, sessionId: label.slice(sessionEnvVar.length + 1) })
          continue
        }
        // QEMU is labelled by its VM name instead: `-name paws-<session id>`.
        const argv = await p.argv().catch(() => [] as ReadonlyArray<string>)
        const name = argv[argv.indexOf("-name") + 1]?.match(qemuNamePattern)
        if (argv.includes("-name") && name) found.push({ pid: p.pid, sessionId: name[1]! })
      }
      return found
    }))

/**
 * Removes what the node labelled but no live session owns: TAPs named `pw…`, nft tables
 * `inet paws_…`, and labelled processes in its netns. Run at start (every session is dead then).
 */
export class Reconciler extends Context.Service<Reconciler, {
  readonly reconcile: (live: ReadonlySet<string>) => Effect.Effect<Reconciled>
}>()("paws/node/network/Reconciler") {
  static readonly layerNoDeps = Layer.effect(
    Reconciler,
    Effect.gen(function* () {
      const cmd = yield* HostCommand
      const warn = (what: string) => (e: { readonly message: string }) =>
        Effect.logWarning(`reconcile: ${what}: ${e.message}`).pipe(Effect.as(false))

      const reconcile = Effect.fn("Reconciler.reconcile")(function* (live: ReadonlySet<string>) {
        // Processes first: a QEMU holding a TAP open would otherwise keep it busy.
        const pids: Array<number> = []
        for (const p of yield* labelledProcesses(cmd.netns)) {
          if (live.has(p.sessionId)) continue
          try {
            process.kill(p.pid, "SIGKILL")
            pids.push(p.pid)
            yield* Effect.logWarning(`reconcile: killed orphan process ${p.pid} of session ${p.sessionId}`)
          } catch {
            // already gone
          }
        }

        const taps: Array<string> = []
        const links = yield* cmd.run(["ip", "-j", "link", "show"]).pipe(
          Effect.map((out) => JSON.parse(out) as ReadonlyArray<{ ifname: string; ifalias?: string }>),
          Effect.catch((e) => warn("listing links")(e).pipe(Effect.as([]))),
        )
        for (const link of links) {
          if (!isPawsTap(link.ifname)) continue
          const owner = link.ifalias?.startsWith(aliasPrefix) ? link.ifalias.slice(aliasPrefix.length) : undefined
          if (owner !== undefined && live.has(owner)) continue
          const ok = yield* cmd.run(["ip", "link", "del", "dev", link.ifname]).pipe(
            Effect.as(true),
            Effect.catch(warn(`deleting TAP ${link.ifname}`)),
          )
          if (ok) {
            taps.push(link.ifname)
            yield* Effect.logWarning(`reconcile: deleted orphan TAP ${link.ifname} (session ${owner ?? "unknown"})`)
          }
        }

        const tables: Array<string> = []
        const listed = yield* cmd.run(["nft", "-j", "list", "tables", "inet"]).pipe(
          Effect.map((out) =>
            (JSON.parse(out) as { nftables: ReadonlyArray<{ table?: { name: string } }> }).nftables
              .flatMap((e) => (e.table ? [e.table.name] : []))
          ),
          Effect.catch((e) => warn("listing nft tables")(e).pipe(Effect.as([]))),
        )
        for (const name of listed) {
          const owner = sessionIdOfTable(name)
          if (!isPawsTable(name) || (owner !== undefined && live.has(owner))) continue
          const ok = yield* cmd.run(["nft", "delete", "table", "inet", name]).pipe(
            Effect.as(true),
            Effect.catch(warn(`deleting table ${name}`)),
          )
          if (ok) {
            tables.push(name)
            yield* Effect.logWarning(`reconcile: deleted orphan nft table inet ${name}`)
          }
        }
        yield* Effect.logInfo(
          `reconcile: removed ${taps.length} TAP(s), ${tables.length} table(s), ${pids.length} process(es)`,
        )
        return { taps, tables, pids }
      })
      return Reconciler.of({ reconcile })
    }),
  )
  static readonly layer = Reconciler.layerNoDeps.pipe(Layer.provide(HostCommand.layer))
}
