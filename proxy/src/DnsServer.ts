import * as dgram from "node:dgram"
import * as net from "node:net"
import dnsPacket from "dns-packet"
import { normalizeHost } from "@paws/core/HostPattern"
import type { AccessPolicy } from "./AccessPolicy.ts"
import type { AuditLog } from "./AuditLog.ts"
import type { BoundListener } from "./HttpsListener.ts"
import { listen } from "./HttpsListener.ts"

const rcode = { noError: 0, formErr: 1, nxDomain: 3, notImp: 4 } as const

/**
 * Answers only allowlisted names, always with the address the VM's firewall sends to this proxy;
 * everything else is NXDOMAIN. No recursion: the guest learns nothing about the outside.
 */
export const makeDnsAnswerer = (policy: AccessPolicy, answerAddress: string, audit: AuditLog) => {
  const answerType = net.isIPv6(answerAddress) ? "AAAA" : "A"
  return (query: Buffer): Buffer | undefined => {
    let packet: dnsPacket.DecodedPacket
    try {
      packet = dnsPacket.decode(query)
    } catch {
      return undefined // garbage: no answer at all
    }
    if (packet.type === "response") return undefined
    const question = packet.questions?.[0]
    const flags = dnsPacket.AUTHORITATIVE_ANSWER | (packet.flag_rd ? dnsPacket.RECURSION_DESIRED : 0)
    const reply = (code: number, answers: Array<dnsPacket.Answer> = []) =>
      dnsPacket.encode({
        type: "response",
        id: packet.id ?? 0,
        flags: flags | code,
        questions: packet.questions ?? [],
        answers,
      })
    if (question === undefined || (packet.questions?.length ?? 0) !== 1) return reply(rcode.formErr)
    const name = normalizeHost(question.name)
    if (!policy.allowed(name)) {
      audit.record({ decision: "dns_refused", host: name, reason: `DNS ${question.type}: not on the allowlist` })
      return reply(rcode.nxDomain)
    }
    audit.record({ decision: "dns_answered", host: name, reason: `DNS ${question.type}` })
    if (question.type !== answerType) return reply(rcode.noError) // e.g. AAAA: empty answer
    return reply(rcode.noError, [{ type: answerType, name: question.name, ttl: 60, data: answerAddress }])
  }
}

export const startDnsServer = async (options: {
  readonly address: string
  readonly port: number
  readonly answer: (query: Buffer) => Buffer | undefined
  readonly maxConnections: number
  readonly idleTimeoutMs: number
}): Promise<{ readonly udpPort: number; readonly tcpPort: number; readonly close: () => Promise<void> }> => {
  const udp = dgram.createSocket({ type: net.isIPv6(options.address) ? "udp6" : "udp4" })
  udp.on("message", (msg, rinfo) => {
    const out = options.answer(msg)
    if (out) udp.send(out, rinfo.port, rinfo.address)
  })
  udp.on("error", () => {})
  await new Promise<void>((resolve, reject) => {
    udp.once("error", reject)
    udp.bind(options.port, options.address, () => {
      udp.off("error", reject)
      resolve()
    })
  })
  const tcpServer = net.createServer((socket) => {
    socket.setTimeout(options.idleTimeoutMs, () => socket.destroy())
    socket.on("error", () => socket.destroy())
    let buffered = Buffer.alloc(0)
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      while (buffered.length >= 2) {
        const length = buffered.readUInt16BE(0)
        if (buffered.length < 2 + length) break
        const out = options.answer(buffered.subarray(2, 2 + length))
        buffered = buffered.subarray(2 + length)
        if (!out) return socket.destroy()
        const frame = Buffer.alloc(2 + out.length)
        frame.writeUInt16BE(out.length, 0)
        out.copy(frame, 2)
        socket.write(frame)
      }
    })
  })
  tcpServer.maxConnections = options.maxConnections
  const tcp: BoundListener = await listen(tcpServer, options.address, options.port)
  return {
    udpPort: udp.address().port,
    tcpPort: tcp.port,
    close: async () => {
      await tcp.close()
      await new Promise<void>((resolve) => udp.close(() => resolve()))
    },
  }
}
