import { Context, Effect, Layer, Scope } from "effect"
import type { HostCommandError } from "../HostCommand.ts"
import { HostCommand } from "../HostCommand.ts"
import { tableName } from "./Naming.ts"
import { NodeTeardown } from "../NodeTeardown.ts"
import type { Slot } from "./NetworkSlot.ts"

/** Where the VM's proxy listens on the slot's host address. */
export interface ProxyPorts {
  readonly https: number
  readonly http: number
  readonly dnsUdp: number
  readonly dnsTcp: number
}

/**
 * One nftables table per VM (`inet paws_<session id>`), rather than iptables chains: the whole
 * policy is applied atomically by one `nft -f` and removed by one `delete table`, it cannot be
 * half-installed or reordered by another VM's rules, and the table name itself carries the
 * session id (the reconciler finds it with `nft list tables`). Base chains of every table see
 * every packet, so all rules match only this VM's TAP and the policies stay `accept`.
 *
 * Guest packets only ever terminate on the host: 443/80/53 to ANY address are DNATed to this
 * VM's proxy on the slot's host IP; INPUT accepts only those DNATed packets (and replies to
 * connections the host opened, i.e. SSH); everything else from the TAP is dropped, including
 * other local addresses, other slots and other proxies. No forwarding either way.
 *
 * The slot's host address (where its proxy listens) takes packets from this TAP only: another
 * guest, another proxy or any other local process in the node's netns is dropped there, whatever
 * its own table says. Replies are accepted only from the guest's own address: a guest that forges
 * another VM's address cannot ride that VM's established flows (conntrack alone matches the tuple,
 * not the interface it came in on).
 *
 * A VM's table goes in isolated (no DNAT, nothing accepted) before the VM boots, and is opened to
 * the proxy in one atomic swap once the proxy reports its ports: VM boot and proxy start overlap.
 */
export const renderRuleset = (slot: Slot, ports: ProxyPorts | undefined): string => {
  const tap = `iifname "${slot.tap}"`
  const fromGuest = `${tap} ip saddr ${slot.guestIp} ip daddr ${slot.hostIp}`
  const to = (port: number) => `dnat ip to ${slot.hostIp}:${port}`
  // Without ports the VM is isolated: nothing from the guest gets in (the proxy is still starting).
  const dnat = ports === undefined ? [] : [
    `${tap} tcp dport 443 ${to(ports.https)}`,
    `${tap} tcp dport 80 ${to(ports.http)}`,
    `${tap} udp dport 53 ${to(ports.dnsUdp)}`,
    `${tap} tcp dport 53 ${to(ports.dnsTcp)}`,
  ]
  const accept = ports === undefined ? [] : [
    `${fromGuest} tcp dport { ${
      [...new Set([ports.https, ports.http, ports.dnsTcp])].join(", ")
    } } ct status dnat accept`,
    `${fromGuest} udp dport ${ports.dnsUdp} ct status dnat accept`,
  ]
  const lines = (xs: ReadonlyArray<string>) => xs.map((x) => `\n    ${x}`).join("")
  return `table inet ${tableName(slot.sessionId)} {
  comment "paws session ${slot.sessionId}"
  chain guest_dnat {
    type nat hook prerouting priority dstnat; policy accept;${lines(dnat)}
  }
  chain guest_input {
    type filter hook input priority filter; policy accept;
    iifname != "${slot.tap}" ip daddr ${slot.hostIp} counter drop
    ${tap} ip saddr ${slot.guestIp} ct state established,related accept${lines(accept)}
    ${tap} counter drop
  }
  chain guest_forward {
    type filter hook forward priority filter; policy accept;
    ${tap} counter drop
    oifname "${slot.tap}" counter drop
  }
}
`
}

export class Firewall extends Context.Service<Firewall, {
  /** Installs the VM's table with the guest fully isolated; deleted when the scope closes. */
  readonly isolate: (slot: Slot) => Effect.Effect<void, HostCommandError, Scope.Scope>
  /** Opens the isolated VM's table to its proxy: 443/80/53 DNATed and accepted. */
  readonly open: (slot: Slot, ports: ProxyPorts) => Effect.Effect<void, HostCommandError>
  /** `isolate` then `open`. */
  readonly apply: (slot: Slot, ports: ProxyPorts) => Effect.Effect<void, HostCommandError, Scope.Scope>
}>()("paws/node/network/Firewall") {
  static readonly layerNoDeps = Layer.effect(
    Firewall,
    Effect.gen(function* () {
      const cmd = yield* HostCommand
      const teardown = yield* Effect.serviceOption(NodeTeardown)
      const isolate = Effect.fn("Firewall.isolate")(function* (slot: Slot) {
        const table = tableName(slot.sessionId)
        yield* Effect.acquireRelease(
          cmd.run(["nft", "-f", "-"], renderRuleset(slot, undefined)).pipe(
            Effect.tap(() => Effect.sync(() => teardown._tag === "Some" && teardown.value.addTable(table))),
          ),
          () =>
            Effect.suspend(() => {
              // A stopping node deleted every table in one `nft -f` already.
              const mine = teardown._tag === "Some" ? teardown.value.dropTable(table) : true
              if (!mine && teardown._tag === "Some" && teardown.value.draining()) return Effect.void
              return cmd.run(["nft", "delete", "table", "inet", table]).pipe(
                Effect.catch((e) => Effect.logWarning(`could not delete nft table ${table}: ${e.message}`)),
              )
            }),
        )
      })
      // One nft transaction: the rules are swapped atomically, never absent.
      const open = (slot: Slot, ports: ProxyPorts) =>
        cmd.run(
          ["nft", "-f", "-"],
          `flush table inet ${tableName(slot.sessionId)}\n${renderRuleset(slot, ports)}`,
        ).pipe(Effect.asVoid, Effect.withSpan("Firewall.open"))
      const apply = (slot: Slot, ports: ProxyPorts) => isolate(slot).pipe(Effect.andThen(open(slot, ports)))
      return Firewall.of({ isolate, open, apply })
    }),
  )
  static readonly layer = Firewall.layerNoDeps.pipe(Layer.provide(HostCommand.layer))
}
