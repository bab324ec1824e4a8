import { assert, layer } from "@effect/vitest"
import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { build } from "rolldown"
import { ImageBuilder } from "../src/image/ImageBuilder.ts"
import { testImageLayer } from "./support/TestImage.ts"
import { assertNothingLeft, dispatchOf, runToEnd } from "./support/Sessions.ts"
import { testNodeLayer } from "./support/TestNode.ts"

const serverScript = fileURLToPath(new URL("./support/mcp-test-server.ts", import.meta.url))
const guestClient = fileURLToPath(new URL("./support/mcp-guest-client.ts", import.meta.url))
const secret = `mcp-secret-${crypto.randomUUID()}`
const secretHash = createHash("sha256").update(secret).digest("hex")

/** Runs in the guest: the MCP protocol by hand with curl, through the proxy, then everything the guest can see. */
const script = `
rpc() { curl -sS -m 30 -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \\
  -o /tmp/rpc.out -w '%{http_code}' --data-binary "$2" "https://mcp.paws.internal/$1"; echo " $(cat /tmp/rpc.out)"; }
call() { rpc tools "{\\"jsonrpc\\":\\"2.0\\",\\"id\\":$1,\\"method\\":\\"tools/call\\",\\"params\\":{\\"name\\":\\"$2\\",\\"arguments\\":{}}}"; }
echo "init=$(rpc tools '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}')"
echo "list=$(rpc tools '{"jsonrpc":"2.0","id":2,"method":"tools/list"}')"
echo "hash=$(call 3 secret_hash)"
echo "whoami=$(call 4 whoami)"
echo "refused=$(call 5 forbidden)"
echo "hidden=$(rpc hidden '{"jsonrpc":"2.0","id":6,"method":"tools/list"}')"
echo "crash=$(call 7 crash)"
echo "again=$(call 8 secret_hash)"
echo "--- guest view ---"
env; ps; cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline
find /etc /root /tmp /workload /output /usr/local /var /home -type f -exec cat {} + 2>/dev/null
echo "--- end ---"
`

const toolsServer = {
  name: "tools",
  transport: "stdio" as const,
  command: process.execPath,
  args: [serverScript],
  env: { PAWS_TEST_MCP_SECRET: secret },
  tools: ["secret_hash", "whoami", "crash"],
}

const line = (out: string, name: string) => out.match(new RegExp(`^${name}=(.*)$`, "m"))?.[1] ?? ""
const body = (out: string, name: string) => JSON.parse(line(out, name).replace(/^\d+ /, ""))

layer(testNodeLayer({ PAWS_NODE_OUTPUT_CAP_BYTES: String(8 * 1024 * 1024) }), {
  excludeTestServices: true,
  timeout: 180_000,
})("MCP gateway (real VM, real proxy, real stdio MCP server)", (it) => {
  it.effect("curl in the guest lists and calls allowed tools; refused, unreachable, crashed; no secret in the guest", () =>
    Effect.gen(function* () {
      const { statuses, result, events } = yield* runToEnd(dispatchOf(script, {
        mcp: [toolsServer],
      }))
      assert.deepStrictEqual(statuses, ["starting", "running", "completed"], result.stderr)
      const out = result.stdout
      assert.match(line(out, "init"), /^200 /, out.slice(0, 2000))
      assert.strictEqual(body(out, "init").result.serverInfo.name, "paws-mcp-gateway/tools")
      assert.deepStrictEqual(body(out, "list").result.tools.map((t: { name: string }) => t.name), [
        "secret_hash",
        "whoami",
        "crash",
      ])
      assert.strictEqual(body(out, "hash").result.content[0].text, secretHash, "the server used its secret")
      // The server ran as its own unprivileged uid (the node is root here).
      const whoami: string = body(out, "whoami").result.content[0].text
      const [, uid, pid] = whoami.match(/^uid=(\d+) pid=(\d+) shadow=unreadable$/) ?? []
      assert.isDefined(uid, whoami)
      assert.notStrictEqual(Number(uid), 0)
      assert.include(body(out, "refused").error.message, "not allowed for this session")
      assert.match(line(out, "hidden"), /^403 /, "a server the session may not use is unreachable")
      assert.include(line(out, "hidden"), `MCP server "hidden" is not available`)
      assert.include(body(out, "crash").error.message, "MCP server tools is unavailable")
      assert.strictEqual(body(out, "again").result.content[0].text, secretHash, "the session went on after the crash")

      const calls = events.flatMap((e) => (e._tag === "mcp" ? [[e.event.tool, e.event.decision]] : []))
      assert.deepStrictEqual(calls, [
        ["secret_hash", "allowed"],
        ["whoami", "allowed"],
        ["forbidden", "refused"],
        ["crash", "server_error"],
        ["secret_hash", "allowed"],
      ])
      const proxied = events.flatMap((e) => (e._tag === "audit" ? [e.event] : []))
      assert.isTrue(proxied.some((a) => a.host === "mcp.paws.internal" && a.decision === "allowed"))

      // The secret was nowhere in the guest: env, processes, files.
      assert.include(out, "--- end ---")
      assert.include(out, "BEGIN CERTIFICATE")
      assert.include(out, "rpc()") // the workload script itself was dumped
      assert.notInclude(out + result.stderr, secret)
      // The server instance died with the session.
      assert.isFalse(existsSync(`/proc/${pid}`), `MCP server ${pid} outlived the session`)
      yield* assertNothingLeft
    }))

  it.effect(
    "the MCP SDK's client in the node image lists and calls tools over the gateway",
    () =>
      Effect.gen(function* () {
        // The Debian `node` image (content-cached in the test data dir, shared with the catalogue test).
        yield* ImageBuilder.use((b) => b.build("node")).pipe(Effect.provide(testImageLayer()), Effect.orDie)
        // The client and the SDK as one file, written into the guest by the script.
        const bundled = yield* Effect.promise(() =>
          build({ input: guestClient, platform: "node", write: false, output: { format: "esm", minify: true } })
        )
        const code = Buffer.from(bundled.output[0].code).toString("base64")
        const { statuses, result } = yield* runToEnd(dispatchOf(
          `printf '%s' '${code}' | base64 -d > /tmp/client.mjs && node /tmp/client.mjs https://mcp.paws.internal/tools`,
          { snapshot: "node", timeoutMs: 120_000, mcp: [toolsServer] },
        ))
        assert.deepStrictEqual(statuses, ["starting", "running", "completed"], JSON.stringify(result).slice(0, 3000))
        const out = result.stdout
        assert.deepStrictEqual(JSON.parse(line(out, "sdk-list")), ["secret_hash", "whoami", "crash"])
        assert.deepStrictEqual(JSON.parse(line(out, "sdk-call")), [{ type: "text", text: secretHash }])
        assert.include(JSON.parse(line(out, "sdk-refused")), "not allowed for this session")
        assert.notInclude(out + result.stderr, secret)
        yield* assertNothingLeft
      }),
    300_000,
  )
})
