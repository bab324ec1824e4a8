import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import { createInterface } from "node:readline"
import { decodeProxyMessageLine, encodeProxyConfigLine, proxyExecArgv } from "../../../core/src/ProxyConfig.ts"
import type { ProxyConfig, ProxyMessage, ProxyPorts } from "../../../core/src/ProxyConfig.ts"
import type { ProxyAuditEvent } from "../../../core/src/ProxyAudit.ts"

export const proxyMain = fileURLToPath(new URL("../../src/main.ts", import.meta.url))

export interface ProxyProcess {
  readonly child: ChildProcess
  readonly ports: ProxyPorts
  readonly caPem: string
  /** Every stdout line, raw, and stderr text: the canary test searches them. */
  readonly stdoutLines: Array<string>
  readonly stderr: () => string
  readonly audits: Array<ProxyAuditEvent>
  readonly messages: Array<ProxyMessage>
  /** Waits until an audit event satisfying `f` arrives. */
  readonly waitForAudit: (f: (e: ProxyAuditEvent) => boolean, timeoutMs?: number) => Promise<ProxyAuditEvent>
  readonly exited: Promise<number | null>
  readonly stop: () => Promise<number | null>
}

/**
 * Spawns the real proxy process (config on stdin, as the node does) and waits for `ready`.
 * `launch`: what node runs after its flags (the source by default; `ProxyLoader.cjs <bundle>` for the
 * bundle).
 */
export const startProxyProcess = (
  config: ProxyConfig,
  launch: ReadonlyArray<string> = [proxyMain],
): Promise<ProxyProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...proxyExecArgv, ...launch], { stdio: ["pipe", "pipe", "pipe"], env: {} })
    const stdoutLines: Array<string> = []
    const messages: Array<ProxyMessage> = []
    const audits: Array<ProxyAuditEvent> = []
    const waiters = new Set<() => void>()
    let stderr = ""
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()))
    const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)))
    exited.then((code) => reject(new Error(`proxy exited ${code} before ready: ${stdoutLines.join("\n")} ${stderr}`)))
    createInterface({ input: child.stdout! }).on("line", (line) => {
      stdoutLines.push(line)
      const message = decodeProxyMessageLine(line)
      messages.push(message)
      if (message._tag === "audit") {
        audits.push(message.event)
        for (const w of waiters) w()
      }
      if (message._tag === "ready") {
        resolve({
          child,
          ports: message.ports,
          caPem: message.caCertificatePem,
          stdoutLines,
          stderr: () => stderr,
          audits,
          messages,
          exited,
          waitForAudit: (f, timeoutMs = 5000) =>
            new Promise((ok, fail) => {
              const check = () => {
                const hit = audits.find(f)
                if (hit) {
                  waiters.delete(check)
                  clearTimeout(timer)
                  ok(hit)
                }
              }
              const timer = setTimeout(() => {
                waiters.delete(check)
                fail(new Error(`no matching audit event; got ${JSON.stringify(audits.slice(-5))}`))
              }, timeoutMs)
              waiters.add(check)
              check()
            }),
          stop: () => {
            child.stdin!.end()
            return exited
          },
        })
      }
    })
    child.stdin!.write(encodeProxyConfigLine(config))
  })
