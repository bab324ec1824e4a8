// A Debian mirror stand-in and a fake Anthropic API, run INSIDE a test netns:
//   ip netns exec NS node mirror-child.ts     stdin: {"root": "/dir/served/as/deb.debian.org", "toolCommand": "…"}\n
// HTTPS with its own CA (the node's proxy trusts it through PAWS_NODE_PROXY_UPSTREAM); stdout:
// {"port", "caPem"} once listening, then one {"received": {host, method, url, apiKey, authorization}}
// line per request.
import { createReadStream, statSync } from "node:fs"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import { join, normalize } from "node:path"
import { createInterface } from "node:readline"
import { makeCertificateAuthority } from "../../../proxy/src/CertificateAuthority.ts"
import { makeLeafCertificateCache } from "../../../proxy/src/LeafCertificateCache.ts"
import { fakeAnthropic } from "./FakeAnthropic.ts"

const line = await new Promise<string>((resolve) => createInterface({ input: process.stdin }).once("line", resolve))
const { root, toolCommand } = JSON.parse(line) as { root: string; toolCommand?: string }
const anthropic = fakeAnthropic(toolCommand ?? "true")
const ca = await makeCertificateAuthority()
const leaves = makeLeafCertificateCache(ca)
const server = https.createServer({ SNICallback: leaves.sniCallback }, (req, res) => {
  const host = (req.headers.host ?? "").split(":")[0]!
  const url = new URL(req.url ?? "/", "https://x").pathname
  const headers = { apiKey: req.headers["x-api-key"], authorization: req.headers["authorization"] }
  process.stdout.write(JSON.stringify({ received: { host, method: req.method, url, ...headers } }) + "\n")
  if (host === "api.anthropic.com") {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => anthropic(Buffer.concat(chunks).toString("utf8"), res, req))
    return
  }
  const file = join(root, normalize(decodeURIComponent(url)).replace(/^(\.\.[/\\])+/, ""))
  const size = host === "deb.debian.org" ? statSync(file, { throwIfNoEntry: false }) : undefined
  if (!size?.isFile()) {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n")
    return
  }
  res.writeHead(200, { "content-length": size.size, "content-type": "application/octet-stream" })
  createReadStream(file).pipe(res)
})
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port, caPem: ca.certificatePem }) + "\n")
process.on("SIGTERM", () => process.exit(0))
process.stdin.on("end", () => process.exit(0))
