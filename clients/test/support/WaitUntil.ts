/** Polls `get` every `every` ms until `ok` holds; past `ms`, fails naming `what` and the last value seen. */
export const waitUntil = async <A>(
  what: string,
  get: () => Promise<A>,
  ok: (a: A) => boolean,
  ms = 60_000,
  every = 100,
): Promise<A> => {
  const deadline = Date.now() + ms
  let last: A = await get()
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`${what}: last ${JSON.stringify(last)?.slice(0, 500)}`)
    await new Promise((r) => setTimeout(r, every))
    last = await get()
  }
  return last
}
