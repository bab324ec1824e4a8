import { Readable } from "node:stream"
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { makeAccessPolicy } from "../src/AccessPolicy.ts"
import { isForbiddenAddress, ownAddresses } from "../src/AddressPolicy.ts"
import { auditPath } from "../src/AuditLog.ts"
import { hostOfHeader, upstreamRequestHeaders } from "../src/RequestJudge.ts"
import { SecretFound, secretNeedles, SecretScanner } from "../src/SecretScanner.ts"
import { WebSocketFrameScanner } from "../src/WebSocketFrameScanner.ts"

const collect = async (chunks: ReadonlyArray<Buffer>, scanner: SecretScanner): Promise<string> => {
  const out: Array<Buffer> = []
  for await (const c of Readable.from(chunks).pipe(scanner)) out.push(c as Buffer)
  return Buffer.concat(out).toString()
}

describe("SecretScanner", () => {
  const secret = "sk-live-0123456789abcdefXYZ/+="
  const needles = secretNeedles([`Bearer ${secret}`])
  const forms = [
    secret,
    encodeURIComponent(secret),
    JSON.stringify(secret).slice(1, -1),
    Buffer.from(secret).toString("base64"),
    Buffer.from(`xy${secret}`).toString("base64url"),
    encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    JSON.stringify(secret).slice(1, -1).replaceAll("/", "\\/"), // PHP-style json_encode
    Buffer.from(secret).toString("hex"),
    Buffer.from(secret).toString("hex").toUpperCase(),
    [...Buffer.from(secret)].map((b) => "%" + b.toString(16).padStart(2, "0")).join(""),
  ]

  it("redacts every encoding of a value wherever the stream is split, keeping the length", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...forms),
        fc.string({ maxLength: 40 }),
        fc.array(fc.nat({ max: 200 }), { maxLength: 6 }),
        async (form, filler, cuts) => {
          const text = Buffer.from(`{"a":"${filler}${form}${filler}","b":"${form}"}`)
          const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b)
          const chunks = [0, ...points, text.length].slice(1).map((end, i, all) =>
            text.subarray(i === 0 ? 0 : all[i - 1]!, end)
          )
          let found = 0
          const out = await collect(chunks, new SecretScanner(needles, "redact", () => found++))
          assert.strictEqual(out.length, text.length)
          assert.notInclude(out, form)
          assert.notInclude(out, secret)
          assert.notInclude(out, Buffer.from(secret).toString("base64").slice(4, -4))
          assert.strictEqual(found, 1)
        },
      ),
      { numRuns: 200 },
    )
  })

  it("redacts a value split across WebSocket frames and reads, keeping every frame's length", async () => {
    const frame = (payload: Buffer, first: boolean, fin: boolean) => {
      const head = payload.length < 126
        ? Buffer.from([(fin ? 0x80 : 0) | (first ? 1 : 0), payload.length])
        : Buffer.from([(fin ? 0x80 : 0) | (first ? 1 : 0), 126, payload.length >> 8, payload.length & 0xff])
      return Buffer.concat([head, payload])
    }
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 300 }),
        fc.array(fc.nat({ max: 400 }), { maxLength: 4 }),
        fc.array(fc.nat({ max: 500 }), { maxLength: 6 }),
        async (filler, frameCuts, readCuts) => {
          const message = Buffer.from(`{"echo":"${filler}Bearer ${secret}${filler}"}`)
          const fcuts = [...new Set(frameCuts.map((c) => c % message.length))].sort((a, b) => a - b)
          const bounds = [0, ...fcuts.filter((c) => c > 0), message.length]
          const frames = bounds.slice(1).map((end, i) =>
            frame(message.subarray(bounds[i]!, end), i === 0, i === bounds.length - 2)
          )
          const wire = Buffer.concat(frames)
          const points = [...new Set(readCuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b)
          const reads = [0, ...points, wire.length].slice(1).map((end, i, all) =>
            wire.subarray(i === 0 ? 0 : all[i - 1]!, end)
          )
          let found = 0
          const out: Array<Buffer> = []
          for await (const c of Readable.from(reads).pipe(new WebSocketFrameScanner(needles, () => found++))) {
            out.push(c as Buffer)
          }
          const result = Buffer.concat(out)
          assert.strictEqual(result.length, wire.length)
          // Same frame headers where they were; payloads joined hold no trace of the value.
          let at = 0
          const payload: Array<Buffer> = []
          for (const f of frames) {
            const headerLength = f[1]! === 126 ? 4 : 2
            assert.deepStrictEqual(result.subarray(at, at + headerLength), f.subarray(0, headerLength))
            payload.push(result.subarray(at + headerLength, at + f.length))
            at += f.length
          }
          const text = Buffer.concat(payload).toString()
          assert.notInclude(text, secret)
          assert.include(text, "[redacted-by-paws]")
          assert.strictEqual(found, 1)
        },
      ),
      { numRuns: 200 },
    )
  })

  it("passes other bytes through untouched and holds nothing back at a clean boundary", async () => {
    const scanner = new SecretScanner(needles, "redact", () => assert.fail("nothing to find"))
    const pushed: Array<string> = []
    scanner.on("data", (c: Buffer) => pushed.push(c.toString()))
    scanner.write(Buffer.from("data: token-1\n\n"))
    await new Promise((r) => setImmediate(r))
    assert.deepStrictEqual(pushed, ["data: token-1\n\n"]) // SSE events are not delayed
  })

  it("fails the stream in block mode", async () => {
    const scanner = new SecretScanner(needles, "block", () => {})
    const error = await collect([Buffer.from(`x=${secret.slice(0, 5)}`), Buffer.from(secret.slice(5))], scanner).then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.instanceOf(error, SecretFound)
  })
})

describe("AccessPolicy", () => {
  const policy = makeAccessPolicy({
    allowOut: ["api.example.com", "*.github.com"],
    credentials: {
      "*.github.com": { headers: { Authorization: "token wild" } },
      "api.github.com": { headers: { Authorization: "token exact", "X-Extra": "e" } },
      "api.example.com": { headers: { "x-api-key": "k1" } },
    },
  })

  it("allows exact names and wildcards below the apex only, case-insensitively", () => {
    assert.isTrue(policy.allowed("API.Example.com."))
    assert.isTrue(policy.allowed("codeload.github.com"))
    assert.isFalse(policy.allowed("github.com"))
    assert.isFalse(policy.allowed("example.com"))
    assert.isFalse(policy.allowed("api.example.com.evil.test"))
  })

  it("injects the most specific rule's headers, lower-cased, and knows foreign secrets", () => {
    assert.deepStrictEqual(policy.injections("api.github.com"), [
      { name: "authorization", value: "token exact" },
      { name: "x-extra", value: "e" },
    ])
    assert.deepStrictEqual(policy.injections("uploads.github.com"), [{ name: "authorization", value: "token wild" }])
    assert.deepStrictEqual(policy.injections("other.test"), [])
    assert.sameMembers([...policy.foreignSecrets("api.example.com")], ["token wild", "token exact", "e"])
    assert.deepStrictEqual(policy.foreignSecrets("api.github.com"), ["k1"])
  })

  it("replaces client headers of an injected name and strips hop-by-hop headers", () => {
    const out = upstreamRequestHeaders(
      ["Host", "a", "AUTHORIZATION", "forged", "Connection", "keep-alive, X-Drop", "X-Drop", "1", "Accept", "*/*"],
      [{ name: "authorization", value: "real" }],
      false,
    )
    assert.deepStrictEqual(out, ["host", "a", "Accept", "*/*", "accept-encoding", "identity", "authorization", "real"])
  })
})

describe("address and header helpers", () => {
  it("forbids loopback, private, link-local, metadata and mapped forms; allows public addresses", () => {
    for (
      const a of ["127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0"]
    ) assert.isTrue(isForbiddenAddress(a), a)
    for (const a of ["::1", "::", "fe80::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "ff02::1"]) {
      assert.isTrue(isForbiddenAddress(a), a)
    }
    for (const a of ["1.1.1.1", "140.82.112.3", "2606:4700::1111", "::ffff:8.8.8.8"]) {
      assert.isFalse(isForbiddenAddress(a), a)
    }
    assert.isTrue(isForbiddenAddress("not-an-ip"))
  })

  it("forbids NAT64 (well-known and local-use) and IPv4-compatible IPv6", () => {
    for (const a of ["64:ff9b::a00:1", "64:ff9b:1::a00:1", "64:ff9b:1:ffff::1", "::a00:1", "::8.8.8.8", "::1:2"]) {
      assert.isTrue(isForbiddenAddress(a), a)
    }
    for (const a of ["64:ff9b:2::1", "64:ff9a::1", "::1:0:0:0"]) assert.isFalse(isForbiddenAddress(a), a)
  })

  it("forbids the node's own addresses, public ones too, in every spelling", () => {
    const own = ["1.2.3.4", "2606:4700:10::6816:1", "127.0.0.1", "fe80::1"]
    for (const a of ["1.2.3.4", "::ffff:1.2.3.4", "2606:4700:10:0::6816:1", "2606:4700:10::6816:0001"]) {
      assert.isTrue(isForbiddenAddress(a, own), a)
    }
    assert.isFalse(isForbiddenAddress("1.2.3.5", own))
    assert.isFalse(isForbiddenAddress("1.2.3.4", []), "not forbidden when it is not the node's")
    // By default the check reads this host's real interfaces: each of their addresses is refused.
    assert.isAbove(ownAddresses().length, 0)
    for (const a of ownAddresses()) assert.isTrue(isForbiddenAddress(a), a)
  })

  it("keeps query keys but never query values in audit paths", () => {
    assert.strictEqual(auditPath("/v1/x?key=secret&b=1&flag"), "/v1/x?key&b&flag")
    assert.strictEqual(auditPath("/plain"), "/plain")
  })

  it("takes the name from a Host header", () => {
    assert.strictEqual(hostOfHeader("API.example.com:8443"), "api.example.com")
    assert.strictEqual(hostOfHeader("[::1]:80"), "::1")
    assert.strictEqual(hostOfHeader(undefined), "")
  })
})

describe("CertificateAuthority", () => {
  it("issues leaves that OpenSSL-backed X509 parsing accepts every time (minimal DER serials)", async () => {
    const { X509Certificate } = await import("node:crypto")
    const { makeCertificateAuthority } = await import("../src/CertificateAuthority.ts")
    const ca = await makeCertificateAuthority()
    const caCert = new X509Certificate(ca.certificatePem)
    for (let i = 0; i < 1000; i++) {
      const leaf = new X509Certificate(await ca.issueLeaf(`n${i}.example.com`))
      assert.strictEqual(leaf.subjectAltName, `DNS:n${i}.example.com`)
      assert.isTrue(leaf.checkIssued(caCert))
      assert.notMatch(leaf.serialNumber, /^00/)
    }
  })
})
