import { isForbiddenAddress } from "@paws/proxy/AddressPolicy"
import { createHash } from "node:crypto"
import { lookup } from "node:dns/promises"
import { request } from "node:https"
import { isIP } from "node:net"

export interface WatchObservation {
  readonly etag: string | undefined
  /** The JSON pointer's value (or, without a pointer, the ETag or the body's SHA-256). */
  readonly value: unknown
}

export interface WatchFetchOptions {
  /** TEST ONLY: loopback addresses pass the address policy (a test's own HTTPS server). */
  readonly allowLoopback: boolean
  /** TEST ONLY: the CA a test server's certificate chains to; default the system's. */
  readonly ca: string | undefined
  readonly maxBytes: number
  readonly timeoutMs: number
}

const isLoopback = (address: string) => address === "::1" || address.startsWith("127.")

/**
 * The address the watch connects to: every address the name resolves to must pass the proxy's
 * address policy (no private, loopback, link-local/metadata, or this host's own addresses), and
 * the connection goes to the one checked, so a second DNS answer cannot swap in another (rebinding).
 */
export const checkedAddress = async (host: string, o: Pick<WatchFetchOptions, "allowLoopback">) => {
  const bare = host.startsWith("[") ? host.slice(1, -1) : host
  const addresses = isIP(bare) !== 0 ? [{ address: bare, family: isIP(bare) }] : await lookup(bare, { all: true })
  if (addresses.length === 0) throw new Error(`${host} does not resolve`)
  addresses.sort((x, y) => x.family - y.family) // IPv4 first: the more reliably routed
  for (const a of addresses) {
    if (isForbiddenAddress(a.address) && !(o.allowLoopback && isLoopback(a.address))) {
      throw new Error(`${host} resolves to ${a.address}, which watches may not reach (private, loopback or metadata)`)
    }
  }
  return addresses[0]!
}

/** JSON pointer (RFC 6901) lookup; undefined when the path does not exist. */
export const atPointer = (doc: unknown, pointer: string): unknown => {
  if (pointer === "") return doc
  let node: unknown = doc
  for (const raw of pointer.slice(1).split("/")) {
    const key = raw.replaceAll("~1", "/").replaceAll("~0", "~")
    if (node === null || typeof node !== "object" || !Object.hasOwn(node, key)) return undefined
    node = (node as Record<string, unknown>)[key]
  }
  return node
}

/** One GET of a watched URL, through the address policy, capped in size and time. */
export const fetchWatched = (url: string, pointer: string | undefined, o: WatchFetchOptions) =>
  (async (): Promise<WatchObservation> => {
    const target = new URL(url)
    if (target.protocol !== "https:") throw new Error("watches poll https:// URLs only")
    const pinned = await checkedAddress(target.hostname, o)
    const { status, headers, body } = await new Promise<
      { status: number; headers: Record<string, string | Array<string> | undefined>; body: Buffer }
    >((resolve, reject) => {
      const req = request(target, {
        method: "GET",
        headers: { accept: "application/json, */*", "user-agent": "paws-watch" },
        ...(o.ca === undefined ? {} : { ca: o.ca }),
        servername: isIP(target.hostname) === 0 ? target.hostname : undefined,
        // Node asks for every address (happy eyeballs) or one: either way, only the checked one.
        lookup: ((_host: string, opts: { all?: boolean }, cb: (...args: Array<unknown>) => void) =>
          opts.all === true
            ? cb(null, [{ address: pinned.address, family: pinned.family }])
            : cb(null, pinned.address, pinned.family)) as never,
        timeout: o.timeoutMs,
      }, (res) => {
        const chunks: Array<Buffer> = []
        let size = 0
        res.on("data", (c: Buffer) => {
          size += c.length
          if (size > o.maxBytes) {
            req.destroy(new Error(`the response is larger than ${o.maxBytes} bytes`))
          } else chunks.push(c)
        })
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
        res.on("error", reject)
      })
      req.on("timeout", () => req.destroy(new Error(`no response within ${o.timeoutMs} ms`)))
      req.on("error", reject)
      req.end()
    })
    if (status < 200 || status > 299) throw new Error(`GET ${url}: HTTP ${status}`)
    const etag = typeof headers["etag"] === "string" ? headers["etag"] : undefined
    if (pointer !== undefined) {
      return { etag, value: atPointer(JSON.parse(body.toString("utf8")), pointer) ?? null }
    }
    return { etag, value: etag ?? createHash("sha256").update(body).digest("hex") }
  })()
