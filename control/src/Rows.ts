/** Database timestamps arrive as Date (or text from some drivers); the API shows ISO 8601. */
export const iso = (value: unknown): string | null => {
  if (value === null || value === undefined) return null
  if (value instanceof Date) return value.toISOString()
  return new Date(String(value)).toISOString()
}
