import { assert, describe, it } from "@effect/vitest"
import { Option, Redacted } from "effect"
import { startRefusal, startWarnings } from "../src/NodeStartChecks.ts"

const none = { controlUrl: Option.none(), proxyUpstream: Option.none() }

describe("node start checks", () => {
  it("refuses an unset, empty or blank PAWS_NODE_TOKEN", () => {
    assert.match(startRefusal(Option.none()) ?? "", /PAWS_NODE_TOKEN is empty or unset/)
    assert.match(startRefusal(Option.some(Redacted.make(""))) ?? "", /PAWS_NODE_TOKEN is empty or unset/)
    assert.match(startRefusal(Option.some(Redacted.make("  "))) ?? "", /PAWS_NODE_TOKEN is empty or unset/)
    assert.isUndefined(startRefusal(Option.some(Redacted.make("pawsn_x"))))
  })

  it("warns about clear-text call-home off loopback only", () => {
    const url = (u: string) => startWarnings({ ...none, controlUrl: Option.some(u) })
    assert.match(url("http://control.example.com:4000")[0] ?? "", /not https/)
    assert.match(url("ws://10.0.0.5:4000")[0] ?? "", /not https/)
    for (const ok of ["http://127.0.0.1:4000", "http://localhost:4000", "http://[::1]:4000", "https://c.example.com"]) {
      assert.deepStrictEqual(url(ok), [], ok)
    }
  })

  it("names every PAWS_NODE_PROXY_UPSTREAM override", () => {
    const [warning] = startWarnings({
      ...none,
      proxyUpstream: Option.some({
        caBundlePem: "-----BEGIN CERTIFICATE-----",
        resolve: { "a.test": { address: "127.0.0.1" } },
        allowPrivateUpstreams: true,
      }),
    })
    assert.include(warning, "TEST-ONLY")
    assert.include(warning, "caBundlePem")
    assert.include(warning, "resolve (names pinned to addresses: a.test)")
    assert.include(warning, "allowPrivateUpstreams")
    assert.deepStrictEqual(startWarnings(none), [])
  })
})
