import { Context, Effect, Layer } from "effect"
import { HostCommand } from "./HostCommand.ts"

/**
 * What the node has made and must remove when it stops: the pids of the QEMU processes it
 * started, its TAPs and its nftables tables. Each session releases its own as it ends; a node
 * that stops with many sessions live instead tears all of them down at once (`teardownAll`):
 * SIGKILL to every QEMU first (a VM of a stopping node has nothing left to save), then one
 * `nft -f` deleting every table and one `ip -batch` deleting every TAP. Per session that was a
 * QMP quit, a grace period and two host commands each, hundreds of spawns on a loaded host.
 * Once draining, a session's own release skips what the bulk step already did.
 */
export class NodeTeardown extends Context.Service<NodeTeardown, {
  readonly draining: () => boolean
  readonly addQemu: (pid: number) => void
  readonly dropQemu: (pid: number) => void
  /** A session's proxy: SIGTERMed with the QEMUs (it drains nothing worth waiting for). */
  readonly addProxy: (pid: number) => void
  readonly dropProxy: (pid: number) => void
  readonly addTap: (tap: string) => void
  /** False once the bulk teardown removed it (or it was never registered): nothing left to delete. */
  readonly dropTap: (tap: string) => boolean
  readonly addTable: (table: string) => void
  readonly dropTable: (table: string) => boolean
  /** Kills every registered QEMU, deletes every registered table and TAP; later releases skip them. */
  readonly teardownAll: Effect.Effect<
    { readonly qemu: number; readonly proxies: number; readonly taps: number; readonly tables: number }
  >
}>()("paws/node/NodeTeardown") {
  static readonly layer = Layer.effect(
    NodeTeardown,
    Effect.gen(function* () {
      const cmd = yield* HostCommand
      const qemu = new Set<number>()
      const proxies = new Set<number>()
      const taps = new Set<string>()
      const tables = new Set<string>()
      let draining = false
      const teardownAll = Effect.gen(function* () {
        draining = true
        const signal = (pids: ReadonlyArray<number>, sig: NodeJS.Signals) => {
          for (const pid of pids) {
            try {
              process.kill(pid, sig)
            } catch {
              // exited already
            }
          }
        }
        // Only pids of children this node spawned (and has not reaped: each release drops its own).
        const pids = [...qemu]
        signal(pids, "SIGKILL")
        signal([...proxies], "SIGTERM")
        const doomedTables = [...tables]
        tables.clear()
        const doomedTaps = [...taps]
        taps.clear()
        // One transaction for all tables; if one is gone already the whole script fails, so retry per table.
        if (doomedTables.length > 0) {
          yield* cmd.run(["nft", "-f", "-"], doomedTables.map((t) => `delete table inet ${t}\n`).join("")).pipe(
            Effect.catch(() =>
              Effect.forEach(doomedTables, (t) => cmd.run(["nft", "delete", "table", "inet", t]).pipe(Effect.ignore), {
                discard: true,
              })
            ),
          )
        }
        // -force: a missing TAP does not stop the batch.
        if (doomedTaps.length > 0) {
          yield* cmd.run(["ip", "-force", "-batch", "-"], doomedTaps.map((t) => `link del dev ${t}\n`).join("")).pipe(
            Effect.catch((e) => Effect.logWarning(`teardown: ip -batch: ${e.message}`)),
          )
        }
        return { qemu: pids.length, proxies: proxies.size, taps: doomedTaps.length, tables: doomedTables.length }
      })
      return NodeTeardown.of({
        draining: () => draining,
        addQemu: (pid) => void qemu.add(pid),
        dropQemu: (pid) => void qemu.delete(pid),
        addProxy: (pid) => void proxies.add(pid),
        dropProxy: (pid) => void proxies.delete(pid),
        addTap: (tap) => void taps.add(tap),
        dropTap: (tap) => taps.delete(tap),
        addTable: (table) => void tables.add(table),
        dropTable: (table) => tables.delete(table),
        teardownAll,
      })
    }),
  )
}

/** A proxy process acquired for a session in the scope, its pid known to the node's teardown meanwhile. */
export const trackedProxy = <P extends { readonly child: { readonly pid?: number | undefined } }>(
  take: () => P,
  stop: (p: P) => Effect.Effect<void>,
) =>
  Effect.flatMap(Effect.serviceOption(NodeTeardown), (teardown) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const p = take()
        if (teardown._tag === "Some" && p.child.pid !== undefined) teardown.value.addProxy(p.child.pid)
        return p
      }),
      (p) =>
        stop(p).pipe(Effect.ensuring(Effect.sync(() => {
          if (teardown._tag === "Some" && p.child.pid !== undefined) teardown.value.dropProxy(p.child.pid)
        }))),
    ))
