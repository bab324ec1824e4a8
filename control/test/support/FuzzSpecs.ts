import fc from "fast-check"

/** Generators of valid SessionSpecs and of their near-valid mutations, for the API fuzz tests. */

const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?$/)
const host = fc.tuple(label, label, fc.constantFrom("com", "dev", "test")).map((p) => p.join("."))
const hostPattern = fc.tuple(fc.boolean(), host).map(([wild, h]) => (wild ? `*.${h}` : h))
const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/)
// Mostly long enough to be a secret (8+ characters); the short ones check that refusal.
const headerValue = fc.string({ minLength: 6, maxLength: 40, unit: "grapheme-ascii" })

const network = fc.uniqueArray(hostPattern, { maxLength: 4 }).chain((allowOut) =>
  fc.record({
    allowOut: fc.constant(allowOut),
    credentials: fc.subarray(allowOut).chain((hosts) =>
      fc.tuple(...hosts.map(() => fc.dictionary(headerName, headerValue, { minKeys: 1, maxKeys: 3 }))).map((rules) =>
        Object.fromEntries(hosts.map((h, i) => [h, { headers: rules[i]! }]))
      )
    ),
    allowWildcardCredential: fc.boolean(),
  }, { requiredKeys: ["allowOut"] })
)

/** Specs that the default limits accept. */
export const validSpec = fc.record({
  snapshot: fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,10}$/),
  workload: fc.record({
    type: fc.constant("script" as const),
    script: fc.string({ minLength: 1, maxLength: 80 }),
    env: fc.dictionary(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/), fc.string({ maxLength: 20 }), {
      maxKeys: 3,
    }),
  }, { requiredKeys: ["type", "script"] }),
  resources: fc.record({ vcpus: fc.integer({ min: 1, max: 4 }), memoryMB: fc.integer({ min: 64, max: 4096 }) }),
  timeoutMs: fc.integer({ min: 1000, max: 60 * 60 * 1000 }),
  network,
  metadata: fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 20 }), { maxKeys: 3 }),
}, { requiredKeys: ["workload"] })

/** Nesting too deep for JSON.stringify: a placeholder object, expanded to text by `toJson`. */
const deep = (depth: number, asArray: boolean): unknown => {
  const v = { deep: `__paws_deep_${depth}_${asArray ? "a" : "o"}__` }
  // fast-check prints counterexamples recursively: name the value, whatever it stands for.
  Object.defineProperty(v, fc.toStringMethod, { value: () => `deep(${depth}, ${asArray ? "arrays" : "objects"})` })
  return v
}

/** JSON text of a mutated spec, with `deep` placeholders expanded to thousands of levels of nesting. */
export const toJson = (value: unknown): string =>
  JSON.stringify(value).replace(/\{"deep":"__paws_deep_(\d+)_([ao])__"\}/g, (_, depth: string, kind: string) => {
    const n = Number(depth)
    return kind === "a" ? "[".repeat(n) + '"leaf"' + "]".repeat(n) : '{"a":'.repeat(n) + '"leaf"' + "}".repeat(n)
  })

export const badHosts = [
  "",
  "*",
  "*.com",
  "10.0.0.1",
  "169.254.169.254",
  "[::1]",
  "::1",
  "localhost:80",
  "http://a.example.com",
  "a..example.com",
  "-a.example.com",
  "a.*.example.com",
  "**.example.com",
  "a.example.com.",
  "exa mple.com",
  "ex\u00e4mple.com",
  "a".repeat(64) + ".com",
  ("a".repeat(60) + ".").repeat(5) + "com",
]

/** A replacement value for a mutation: wrong types, odd strings, deep nesting, pollution keys. */
const replacement: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(null, true, 0, -1, 1.5, 1e308, -0, "", [], {}, "NaN", "Infinity"),
  fc.constantFrom(...badHosts),
  fc.string({ unit: "binary", maxLength: 30 }),
  // Lone surrogates: valid in a JS string and in JSON text, not in UTF-8 or PostgreSQL jsonb.
  fc.tuple(fc.string({ maxLength: 5 }), fc.constantFrom("\ud800", "\udfff", "\ud83d", "\ude00\ud83d"))
    .map(([s, lone]) => `${s}${lone}${s}`),
  fc.tuple(fc.string({ maxLength: 10 }), fc.constantFrom("\r\n", "\n", "\r", "\0", "\r\nX-Injected: 1"))
    .map(([s, bad]) => `${s}${bad}${s}`),
  fc.integer({ min: 1, max: 400 }).map((kb) => "x".repeat(kb * 1024)),
  fc.tuple(fc.integer({ min: 10, max: 20_000 }), fc.boolean()).map(([d, arr]) => deep(d, arr)),
  fc.constantFrom("__proto__", "constructor", "prototype").map((k) => {
    const o = {}
    Object.defineProperty(o, k, { value: { polluted: true }, enumerable: true, writable: true, configurable: true })
    return o
  }),
)

const pollutionKey = fc.oneof(
  fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "then", "valueOf"),
  fc.string({ maxLength: 12, unit: "binary" }),
)

export type Mutation =
  | { readonly op: "replace"; readonly at: number; readonly value: unknown }
  | { readonly op: "add"; readonly at: number; readonly key: string; readonly value: unknown }
  | { readonly op: "delete"; readonly at: number }

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("replace" as const), at: fc.nat(), value: replacement }),
  fc.record({ op: fc.constant("add" as const), at: fc.nat(), key: pollutionKey, value: replacement }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat() }),
)

type Slot = { readonly parent: Record<string, unknown>; readonly key: string } | undefined

const slots = (root: unknown): Array<{ slot: Slot; value: unknown }> => {
  const out: Array<{ slot: Slot; value: unknown }> = [{ slot: undefined, value: root }]
  const todo: Array<unknown> = [root] // iterative: mutated values nest thousands deep
  while (todo.length > 0) {
    const v = todo.pop()
    if (v === null || typeof v !== "object") continue
    for (const key of Object.keys(v)) {
      const child = (v as Record<string, unknown>)[key]
      out.push({ slot: { parent: v as Record<string, unknown>, key }, value: child })
      todo.push(child)
    }
  }
  return out
}

const setOwn = (o: Record<string, unknown>, key: string, value: unknown) =>
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true })

/** Applies mutations to a deep copy of `spec` (own `__proto__` keys survive into the JSON). */
export const mutate = (spec: unknown, mutations: ReadonlyArray<Mutation>): unknown => {
  let root = structuredClone(spec)
  for (const m of mutations) {
    const all = slots(root)
    const { slot, value } = all[m.at % all.length]!
    if (m.op === "add") {
      if (value !== null && typeof value === "object" && !Array.isArray(value)) {
        setOwn(value as Record<string, unknown>, m.key, m.value)
      }
    } else if (slot === undefined) {
      if (m.op === "replace") root = m.value
    } else if (m.op === "replace") setOwn(slot.parent, slot.key, m.value)
    else if (Array.isArray(slot.parent)) slot.parent.splice(Number(slot.key), 1)
    else delete slot.parent[slot.key]
  }
  return root
}
