import { Config, Schema } from "effect"
import type { Option, Redacted } from "effect"

/**
 * One environment setting: how it is read and how `--help` and the README describe it. Each
 * package's settings are one table of these (ControlConfig, NodeConfig, ClientConfig), read once,
 * so a variable cannot be read in one place and documented (or defaulted) differently in another.
 */
export interface Setting<A> {
  readonly name: string
  readonly description: string
  /** The default as a person reads it ("4000", "(unset: …)"). */
  readonly shown: string
  readonly config: Config.Config<A>
}

const make = <A>(name: string, description: string, shown: string, config: Config.Config<A>): Setting<A> => ({
  name,
  description,
  shown,
  config,
})

export const textSetting = (name: string, fallback: string, description: string): Setting<string> =>
  make(
    name,
    description,
    fallback === "" ? "(empty)" : fallback,
    Config.String(name).pipe(Config.withDefault(fallback)),
  )

/** An integer in [min, max]; a value outside fails at start naming the variable. */
export const intSetting = (
  name: string,
  fallback: number,
  description: string,
  range: { readonly min?: number; readonly max?: number } = {},
): Setting<number> =>
  make(
    name,
    description,
    String(fallback),
    Config.schema(
      Schema.Int.pipe(
        Schema.check(Schema.isBetween({ minimum: range.min ?? 1, maximum: range.max ?? Number.MAX_SAFE_INTEGER })),
      ),
      name,
    ).pipe(Config.withDefault(fallback)),
  )

export const flagSetting = (name: string, fallback: boolean, description: string): Setting<boolean> =>
  make(name, description, String(fallback), Config.Boolean(name).pipe(Config.withDefault(fallback)))

/** Unset is a meaningful state (`unset` says what it means). */
export const optionalSetting = (name: string, unset: string, description: string): Setting<string | undefined> =>
  make(name, description, `(unset: ${unset})`, Config.String(name).pipe(Config.option, Config.map(optionalValue)))

/** Like optionalSetting, as an Option (for code that matches on it). */
export const optionSetting = (name: string, unset: string, description: string): Setting<Option.Option<string>> =>
  make(name, description, `(unset: ${unset})`, Config.option(Config.String(name)))

export const secretSetting = (
  name: string,
  unset: string,
  description: string,
): Setting<Redacted.Redacted | undefined> =>
  make(name, description, `(unset: ${unset})`, Config.Redacted(name).pipe(Config.option, Config.map(optionalValue)))

/** A setting read some other way (a schema, a choice); `shown` and `config` given as they are. */
export const customSetting = <A>(name: string, shown: string, description: string, config: Config.Config<A>) =>
  make(name, description, shown, config)

const optionalValue = <A>(o: { readonly _tag: "Some"; readonly value: A } | { readonly _tag: "None" }) =>
  o._tag === "Some" ? o.value : undefined

type Values<S> = { readonly [K in keyof S]: S[K] extends Setting<infer A> ? A : never }

/** Reads a whole table at once (the failure names the first bad variable). */
export const readSettings = <S extends Record<string, Setting<unknown>>>(table: S): Config.Config<Values<S>> =>
  Config.all(Object.fromEntries(Object.entries(table).map(([k, s]) => [k, s.config]))) as never

/** `--help` lines of a table: name, what it does, its default. */
export const settingsHelp = (title: string, table: Record<string, Setting<unknown>>): string =>
  `${title}:\n${
    Object.values(table).map((s) => `  ${s.name.padEnd(30)} ${s.description} (default: ${s.shown})`).join("\n")
  }`
