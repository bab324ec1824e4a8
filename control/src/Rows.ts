import { Schema } from "effect"

/** Database timestamps arrive as Date (or text from some drivers); the API shows ISO 8601. */
export const iso = (value: unknown): string | null => {
  if (value === null || value === undefined) return null
  if (value instanceof Date) return value.toISOString()
  return new Date(String(value)).toISOString()
}

/** jsonb arrives parsed from PostgreSQL and as text from some drivers. */
export const json = (value: unknown): unknown => (typeof value === "string" ? JSON.parse(value) : value)

/**
 * What the database returned, decoded with the domain's schema instead of cast: a row that does
 * not fit (a hand-edited table, a migration gone wrong) is a defect naming what and why, never a
 * wrong value handed to the API.
 */
export const rowDecoder = <S extends Schema.Codec<unknown, unknown>>(schema: S, what: string) => {
  const decode = Schema.decodeUnknownSync(schema)
  return (value: unknown): S["Type"] => {
    try {
      return decode(value)
    } catch (e) {
      throw new Error(`a stored ${what} does not match its schema: ${(e as Error).message}`)
    }
  }
}
