import { Context, Effect, Layer, Scope } from "effect"
import type { HostCommandError } from "../HostCommand.ts"
import { HostCommand } from "../HostCommand.ts"
import { guestMac, hostMac, tapAlias, tapName } from "./Naming.ts"
import type { PoolExhausted, SlotAddresses } from "./AddressSlots.ts"
import { AddressSlots } from "./AddressSlots.ts"
import { NodeTeardown } from "../NodeTeardown.ts"

/** A VM's network: its TAP (fixed host MAC, /30 host address, permanent neighbour entry for the guest). */
export interface Slot extends SlotAddresses {
  readonly sessionId: string
  readonly tap: string
  readonly hostMac: string
  readonly guestMac: string
}

/** The slot as its guest is configured: address, gateway and resolver (both the host end). */
export const guestNetworkOf = (slot: Slot) => ({
  tap: slot.tap,
  guestMac: slot.guestMac,
  guestIp: slot.guestIp,
  guestCidr: `${slot.guestIp}/${slot.prefixLength}`,
  gateway: slot.hostIp,
  dns: slot.hostIp,
})

export const tapUpScript = (slot: Slot): string =>
  [
    `tuntap add dev ${slot.tap} mode tap`,
    `link set dev ${slot.tap} address ${slot.hostMac}`,
    `link set dev ${slot.tap} alias ${tapAlias(slot.sessionId)}`,
    `addr add ${slot.hostIp}/${slot.prefixLength} dev ${slot.tap}`,
    `link set dev ${slot.tap} up`,
    // The guest's MAC is fixed: no ARP round trips (and no 1 s retries) while it boots.
    `neigh replace ${slot.guestIp} lladdr ${slot.guestMac} dev ${slot.tap} nud permanent`,
  ].join("\n") + "\n"

export class NetworkSlot extends Context.Service<NetworkSlot, {
  /** A slot for the session; released (TAP deleted, /30 freed) when the scope closes. */
  readonly acquire: (sessionId: string) => Effect.Effect<Slot, PoolExhausted | HostCommandError, Scope.Scope>
}>()("paws/node/network/NetworkSlot") {
  static readonly layerNoDeps = Layer.effect(
    NetworkSlot,
    Effect.gen(function* () {
      const pool = yield* AddressSlots
      const cmd = yield* HostCommand
      const teardown = yield* Effect.serviceOption(NodeTeardown)
      const deleteTap = (tap: string) =>
        Effect.suspend(() => {
          // A stopping node deleted every TAP in one batch already.
          const mine = teardown._tag === "Some" ? teardown.value.dropTap(tap) : true
          if (!mine && teardown._tag === "Some" && teardown.value.draining()) return Effect.void
          return cmd.run(["ip", "link", "del", "dev", tap]).pipe(
            Effect.catch((e) => Effect.logWarning(`could not delete TAP ${tap}: ${e.message}`)),
          )
        })
      const acquire = Effect.fn("NetworkSlot.acquire")(function* (sessionId: string) {
        const addresses = yield* Effect.acquireRelease(pool.allocate, (a) => pool.free(a.index))
        const slot: Slot = { ...addresses, sessionId, tap: tapName(sessionId), hostMac, guestMac }
        yield* Effect.acquireRelease(
          cmd.run(["ip", "-batch", "-"], tapUpScript(slot)).pipe(
            // A half-made TAP is still ours to remove.
            Effect.tapError(() => cmd.run(["ip", "link", "del", "dev", slot.tap]).pipe(Effect.ignore)),
            Effect.tap(() => Effect.sync(() => teardown._tag === "Some" && teardown.value.addTap(slot.tap))),
          ),
          () => deleteTap(slot.tap),
        )
        return slot
      })
      return NetworkSlot.of({ acquire })
    }),
  )
  static readonly layer = NetworkSlot.layerNoDeps.pipe(Layer.provide([AddressSlots.layer, HostCommand.layer]))
}
