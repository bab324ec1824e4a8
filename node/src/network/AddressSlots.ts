import { Context, Data, Effect, Layer } from "effect"
import { NodeConfig } from "../NodeConfig.ts"

export class PoolExhausted extends Data.TaggedError("PoolExhausted")<{ readonly size: number }> {}
export class InvalidPool extends Data.TaggedError("InvalidPool")<{ readonly pool: string; readonly reason: string }> {}

/** One /30 out of the pool: network .0, host side .1, guest .2, broadcast .3. */
export interface SlotAddresses {
  readonly index: number
  readonly hostIp: string
  readonly guestIp: string
  readonly prefixLength: 30
}

const ipToInt = (ip: string): number | undefined => {
  const parts = ip.split(".")
  if (parts.length !== 4) return undefined
  let n = 0
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined
    n = n * 256 + Number(p)
  }
  return n
}
const intToIp = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".")

export interface ParsedPool {
  readonly base: number
  readonly size: number
}

/** `a.b.c.d/len` with len ≤ 30, aligned: how many /30 slots it holds. */
export const parsePool = (pool: string): ParsedPool | InvalidPool => {
  const [ip, lenText] = pool.split("/")
  const base = ipToInt(ip ?? "")
  const len = Number(lenText)
  if (base === undefined || !Number.isInteger(len) || len < 8 || len > 30) {
    return new InvalidPool({ pool, reason: "must be an IPv4 CIDR with prefix length 8..30" })
  }
  const blockSize = 2 ** (32 - len)
  if (base % blockSize !== 0) return new InvalidPool({ pool, reason: "address is not aligned to its prefix" })
  return { base, size: blockSize / 4 }
}

export const slotAddresses = (pool: ParsedPool, index: number): SlotAddresses => {
  const net = pool.base + index * 4
  return { index, hostIp: intToIp(net + 1), guestIp: intToIp(net + 2), prefixLength: 30 }
}

/** Hands out free /30 slots; a slot returns to the pool when its owner's scope closes. */
export class AddressSlots extends Context.Service<AddressSlots, {
  readonly size: number
  readonly allocate: Effect.Effect<SlotAddresses, PoolExhausted>
  readonly free: (index: number) => Effect.Effect<void>
  readonly inUse: Effect.Effect<number>
}>()("paws/node/network/AddressSlots") {
  static readonly make = (pool: ParsedPool) =>
    Effect.sync(() => {
      const used = new Set<number>()
      let next = 0
      return AddressSlots.of({
        size: pool.size,
        // Round-robin so a just-freed slot (whose conntrack entries may linger) is reused last.
        allocate: Effect.suspend(() => {
          for (let i = 0; i < pool.size; i++) {
            const index = (next + i) % pool.size
            if (!used.has(index)) {
              used.add(index)
              next = (index + 1) % pool.size
              return Effect.succeed(slotAddresses(pool, index))
            }
          }
          return Effect.fail(new PoolExhausted({ size: pool.size }))
        }),
        free: (index) => Effect.sync(() => void used.delete(index)),
        inUse: Effect.sync(() => used.size),
      })
    })

  static readonly layer = Layer.effect(
    AddressSlots,
    Effect.gen(function* () {
      const { pool } = yield* NodeConfig
      const parsed = parsePool(pool)
      if (parsed instanceof InvalidPool) return yield* Effect.die(parsed)
      return yield* AddressSlots.make(parsed)
    }),
  )
}
