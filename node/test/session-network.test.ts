import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Stream } from "effect"
import type { NodeSessionEvent } from "@paws/core"
import { LiveSessions } from "../src/session/LiveSessions.ts"
import { assertNothingLeft, dispatchOf, runToEnd } from "./support/Sessions.ts"
import { serve, sh } from "./support/TestNet.ts"
import { testNodeLayer, TestWorld } from "./support/TestNode.ts"

const apiKey = `sk-ant-test-${crypto.randomUUID()}`

/** Runs in the guest: DNS, HTTPS and git through the proxy, isolation probes, then everything it can see. */
const script = `
GW=$(ip route | awk '/default/ {print $3}')
echo "gw=$GW"
echo "dns=$(nslookup api.test 2>/dev/null | awk '/^Address/ {a=$NF} END {print a}')"
curl -sS -o /dev/null -w 'api=%{http_code}\\n' -H 'x-api-key: guest-made-up' https://api.test/v1/messages
git clone -q https://git.test/repo.git /tmp/repo && echo "clone=$(cat /tmp/repo/README)"
probe() { curl -m 2 -s -o /dev/null "$2"; echo "$1=$?"; }
probe rpc "http://$GW:7711/" &
probe othervm "http://$B_GUEST:22/" &
for p in $B_PROXY_PORTS; do probe "otherproxy$p" "http://$B_HOST:$p/" & done
probe elsewhere "http://10.200.0.1:8080/" &
wait
echo "--- guest view ---"
env; ps; cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline
find /etc /root /tmp /workload /output /usr/local /var /home -type f -exec cat {} + 2>/dev/null
echo "--- end ---"
`

layer(testNodeLayer({ PAWS_NODE_OUTPUT_CAP_BYTES: String(8 * 1024 * 1024) }), {
  excludeTestServices: true,
  timeout: 180_000,
})("session network (real VMs, real proxy)", (it) => {
  it.effect(
    "HTTPS, git clone and DNS via the proxy with credentials injected; no credential in the guest; guest isolated",
    () =>
      Effect.scoped(Effect.gen(function* () {
        const world = yield* TestWorld
        const sessions = yield* LiveSessions
        yield* serve(world.netns, "tcp", "0.0.0.0", 7711, "node-rpc")

        // VM B idles; VM A tries to reach it and its proxy.
        const b = dispatchOf("echo up; sleep 120")
        const bRunning = yield* Deferred.make<void>()
        const bFiber = yield* sessions.run(b).pipe(
          Stream.runForEach((e: NodeSessionEvent) =>
            e._tag === "output" ? Deferred.succeed(bRunning, undefined) : Effect.void
          ),
          Effect.forkChild,
        )
        yield* Deferred.await(bRunning)
        const links = JSON.parse(yield* sh(["ip", "-n", world.netns, "-j", "-d", "addr", "show"])) as Array<
          { ifalias?: string; addr_info: Array<{ local: string }> }
        >
        const bHost = links.find((l) => l.ifalias === `paws-session=${b.sessionId}`)!.addr_info[0]!.local
        const bGuest = bHost.replace(/\d+$/, (n) => String(Number(n) + 1))
        const listening = yield* sh(["ip", "netns", "exec", world.netns, "ss", "-Hltn", "src", bHost])
        const bPorts = [...listening.matchAll(/:(\d+)\s/g)].map((m) => m[1]!)
        assert.isAtLeast(bPorts.length, 2)

        const { statuses, result, events } = yield* runToEnd(dispatchOf(script, {
          workload: {
            type: "script",
            script,
            env: { B_HOST: bHost, B_GUEST: bGuest, B_PROXY_PORTS: bPorts.join(" ") },
          },
          network: {
            allowOut: ["api.test", "git.test"],
            credentials: {
              "api.test": { headers: { "x-api-key": apiKey } },
              "git.test": { headers: { authorization: world.gitAuth } },
            },
          },
        }))
        const audits = events.flatMap((e) => (e._tag === "audit" ? [e.event] : []))
        yield* sessions.cancel(b.sessionId)
        yield* Fiber.join(bFiber)

        assert.deepStrictEqual(statuses, ["starting", "running", "completed"], result.stderr)
        const out = result.stdout
        const gw = out.match(/^gw=(.*)$/m)![1]!
        assert.strictEqual(out.match(/^dns=(.*)$/m)?.[1], gw, "DNS answers come from the proxy with its address")
        assert.include(out, "api=200", `${out.slice(0, 600)}\n${JSON.stringify(audits)}`)
        assert.include(out, "clone=hello from the test upstream")
        for (const name of ["rpc", "othervm", "elsewhere", ...bPorts.map((p) => `otherproxy${p}`)]) {
          assert.include(out, `${name}=28`, `${name} must time out (dropped)`)
        }
        assert.include(out, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")
        assert.include(out, "NODE_EXTRA_CA_CERTS=")

        // The credentials reached the upstreams, replacing what the guest sent ...
        const api = world.received.filter((r) => r.host === "api.test")
        assert.strictEqual(api.at(-1)?.headers["x-api-key"], apiKey)
        const git = world.received.filter((r) => r.host === "git.test")
        assert.isAbove(git.length, 0)
        for (const r of git) assert.strictEqual(r.headers["authorization"], world.gitAuth)
        // The proxy's audit events came back as session events, naming (never carrying) what it injected.
        const injected = audits.find((a) => a.host === "api.test" && a.decision === "allowed")
        assert.deepStrictEqual(injected?.injected, ["x-api-key"], JSON.stringify(audits))
        assert.notInclude(JSON.stringify(audits), apiKey)
        // ... and were nowhere in the guest's env, processes or files.
        assert.isFalse(result.truncated)
        assert.include(out, "--- end ---")
        // The dump really covered env, files and processes (so the absence below means something).
        assert.include(out, "B_PROXY_PORTS=")
        assert.include(out, "probe rpc") // /workload/script.sh
        assert.include(out, "BEGIN CERTIFICATE") // the trust store
        assert.include(out, "dropbear")
        for (const secret of [apiKey, world.gitAuth, world.gitAuth.slice("Basic ".length)]) {
          assert.notInclude(out + result.stderr, secret)
        }
        yield* assertNothingLeft
      })),
  )
})
