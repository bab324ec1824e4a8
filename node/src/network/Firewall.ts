import { Context, Effect, Layer, Scope } from "effect"
import type { CommandFailed } from "./HostCommand.ts"
import { HostCommand } from "./HostCommand.ts"
import { tableName } from "./Naming.ts"
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
 */
export const renderRuleset = (slot: Slot, ports: ProxyPorts): string => {
  const tap = `iifname "${slot.tap}"`
  const to = (port: number) => `dnat ip to ${slot.hostIp}:${port}`
  const tcpPorts = [...new Set([ports.https, ports.http, ports.dnsTcp])].join(", ")
  const fromGuest = `${tap} ip saddr ${slot.guestIp} ip daddr ${slot.hostIp}`
  return `table inet ${tableName(slot.sessionId)} {
  comment "paws session ${slot.sessionId}"
  chain guest_dnat {
    type nat hook prerouting priority dstnat; policy accept;
    ${tap} tcp dport 443 ${to(ports.https)}
    ${tap} tcp dport 80 ${to(ports.http)}
    ${tap} udp dport 53 ${to(ports.dnsUdp)}
    ${tap} tcp dport 53 ${to(ports.dnsTcp)}
  }
  chain guest_input {
    type filter hook input priority filter; policy accept;
    ${tap} ct state established,related accept
    ${fromGuest} tcp dport { ${tcpPorts} } ct status dnat accept
    ${fromGuest} udp dport ${ports.dnsUdp} ct status dnat accept
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
  /** Installs the VM's table; deleted when the scope closes. */
  readonly apply: (slot: Slot, ports: ProxyPorts) => Effect.Effect<void, CommandFailed, Scope.Scope>
}>()("paws/node/network/Firewall") {
  static readonly layerNoDeps = Layer.effect(
    Firewall,
    Effect.gen(function* () {
      const cmd = yield* HostCommand
      const apply = Effect.fn("Firewall.apply")(function* (slot: Slot, ports: ProxyPorts) {
        const table = tableName(slot.sessionId)
        yield* Effect.acquireRelease(
          cmd.run(["nft", "-f", "-"], renderRuleset(slot, ports)),
          () =>
            cmd.run(["nft", "delete", "table", "inet", table]).pipe(
              Effect.catch((e) => Effect.logWarning(`could not delete nft table ${table}: ${e.message}`)),
            ),
        )
      })
      return Firewall.of({ apply })
    }),
  )
  static readonly layer = Firewall.layerNoDeps.pipe(Layer.provide(HostCommand.layer))
}
