/**
 * Fault kinds. Shared ones run two at a time; exclusive ones (a whole node or control plane
 * going away, or filling the node to hold a session in the queue) run alone, so that the fault
 * touches only sessions whose outcome it decides.
 */
export const sharedKinds = [
  "normal",
  "qemu-kill",
  "proxy-kill",
  "ssh-cut",
  "timeout",
  "cancel-starting",
  "cancel-running",
] as const
export const exclusiveKinds = ["cancel-pending", "node-kill", "control-restart"] as const
export type Kind = typeof sharedKinds[number] | typeof exclusiveKinds[number]

/** mulberry32: small, seedable, good enough to pick faults and delays reproducibly. */
export const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const shuffle = <A>(xs: Array<A>, random: () => number): Array<A> => {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[xs[i], xs[j]] = [xs[j]!, xs[i]!]
  }
  return xs
}

/** Every kind once first (in random order), then random picks (exclusive kinds rarer: they cost most). */
export const allKinds = sharedKinds.length + exclusiveKinds.length
export const makePlan = (count: number, random: () => number): Array<Kind> => {
  const rest: Array<Kind> = []
  while (rest.length + allKinds < count) {
    rest.push(random() < 0.1 ? exclusiveKinds[Math.floor(random() * 3)]! : sharedKinds[Math.floor(random() * 7)]!)
  }
  return [...shuffle<Kind>([...sharedKinds, ...exclusiveKinds], random), ...rest]
}
