import { execFile } from "node:child_process"
import * as https from "node:https"
import type { LookupFunction } from "node:net"

export interface CurlResult {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

/** Real curl: `--resolve` sends every name to the proxy's loopback listener, trusting only `caFile`. */
export const curl = (args: ReadonlyArray<string>): Promise<CurlResult> =>
  new Promise((resolve, reject) => {
    execFile("curl", ["-sS", "-D", "-", "--max-time", "20", ...args], { encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl failed: ${stderr || err.message}`))
      let rest = stdout
      let head = ""
      // Skip interim responses (100 Continue) to the final header block.
      do {
        const end = rest.indexOf("\r\n\r\n")
        head = rest.slice(0, end)
        rest = rest.slice(end + 4)
      } while (/^HTTP\/\S+ 1\d\d/.test(head))
      const [statusLine, ...lines] = head.split("\r\n")
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const i = line.indexOf(":")
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim()
      }
      resolve({ status: Number.parseInt(statusLine!.split(" ")[1]!, 10), headers, body: rest })
    })
  })

/** Every name resolves to loopback (where the proxy listens), as the VM's firewall DNAT would do. */
export const loopbackLookup: LookupFunction = (_host, options, cb) =>
  options.all ? cb(null, [{ address: "127.0.0.1", family: 4 }]) : cb(null, "127.0.0.1", 4)

export const run = (
  cmd: string,
  args: ReadonlyArray<string>,
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: "utf8", ...options }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")} failed: ${stderr}`))
      else resolve(stdout + stderr)
    })
  })

/** A Node https request through the proxy (for the streaming tests). */
export const proxiedRequest = (
  port: number,
  host: string,
  caPem: string,
  options: https.RequestOptions = {},
) =>
  https.request({
    host,
    servername: host,
    port,
    ca: caPem,
    lookup: loopbackLookup,
    agent: false,
    ...options,
  })
