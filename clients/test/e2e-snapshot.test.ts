// deno-lint-ignore-file no-explicit-any -- tests read loosely typed JSON replies
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { leftovers } from "../../node/test/support/TestNode.ts"
import { paws } from "./support/CliProcess.ts"
import { freePort, makeE2eWorld, type PawsProcess, startPaws } from "./support/E2eWorld.ts"
import { waitUntil } from "./support/WaitUntil.ts"

// Root only: real `paws control` and `paws node` processes (the node in a test netns with
// HTTPS upstreams), real VMs; snapshots built and used through the real CLI.

let world: Awaited<ReturnType<typeof makeE2eWorld>>
let control: PawsProcess
let node: PawsProcess
let url = ""
let cli: Record<string, string | undefined> = {}
const secret = `sk-snap-${crypto.randomUUID()}`

const api = async (method: string, path: string) => {
  const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${cli.PAWS_API_KEY}` } })
  const text = await res.text()
  return { status: res.status, body: text === "" ? undefined : JSON.parse(text) as any }
}

const snapshotDir = (name: string) => join(world.dir, "node", "snapshots", name)

/** Every file of the snapshot (RAM, disk overlay, device state) searched for the credential, raw and base64. */
const secretIn = (dir: string): Array<string> => {
  const needles = [Buffer.from(secret), Buffer.from(Buffer.from(secret).toString("base64"))]
  return readdirSync(dir).filter((f) => {
    const bytes = readFileSync(join(dir, f))
    return needles.some((n) => bytes.indexOf(n) >= 0)
  })
}

const setup = [
  "set -e",
  // allowlisted: reaches the upstream through the proxy, which injects the credential
  "curl -sS -o /dev/null -w '%{http_code}' https://api.test/setup-fetch > /root/api-status",
  // not allowlisted: the proxy refuses it
  "if curl -sS -m 10 -o /dev/null https://echo.test/ 2>/root/echo-error; then echo reachable > /root/echo; else echo blocked > /root/echo; fi",
  "echo tools-ready > /root/marker",
].join("\n")

/** What a session sees: marker files, and how many certificates its trust bundle holds. */
const probe = "cat /root/marker /root/api-status /root/echo 2>&1; echo; " +
  "echo certs=$(grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt); " +
  "curl -sS -o /dev/null -w 'api=%{http_code}\\n' https://api.test/from-session"

beforeAll(async () => {
  world = await makeE2eWorld()
  const port = await freePort()
  url = `http://127.0.0.1:${port}`
  control = startPaws(["control"], {
    PAWS_HOST: "127.0.0.1",
    PAWS_PORT: String(port),
    PAWS_DATA_DIR: join(world.dir, "control"),
    PAWS_DISPATCH_INTERVAL_MS: "200",
  })
  await control.waitFor(/paws control is serving/, 120_000)
  cli = {
    PAWS_URL: url,
    PAWS_API_KEY: readFileSync(join(world.dir, "control", "admin.key"), "utf8").trim(),
    PAWS_CONFIG: join(world.dir, "none.json"),
  }
  const created = await paws(["nodes", "token", "create", "--name", "e2e-snap"], cli)
  expect(created.code, created.stderr).toBe(0)
  node = startPaws(["node"], {
    ...world.nodeEnv,
    PAWS_DATA_DIR: join(world.dir, "node"),
    PAWS_CONTROL_URL: url,
    PAWS_NODE_TOKEN: created.stdout.trim(),
    PAWS_NODE_ID: "e2e-snap",
    PAWS_NODE_MAX_VMS: "2",
    PAWS_NODE_LABELS: "zone=e2e,disk=ssd",
  })
  await waitUntil("registered", () => api("GET", "/v1/nodes"), (r) => r.body.some((n: any) => n.id === "e2e-snap"))
}, 180_000)

afterAll(async () => {
  await node?.kill("SIGTERM")
  await control?.kill("SIGTERM")
  await world?.close()
}, 60_000)

describe("snapshots end to end (real control, node, VMs; real CLI)", () => {
  it(
    "paws image snapshot: setup reaches its allowlist with an injected credential, other hosts are blocked; " +
      "the snapshot is listed with its manifest, sessions restore it, and rm removes it",
    async () => {
      const built = await paws([
        "image",
        "snapshot",
        "tools",
        "--allow",
        "api.test",
        "--cred",
        "api.test:x-api-key=$SNAP_KEY",
        "--",
        setup,
      ], { ...cli, SNAP_KEY: secret })
      expect(built.code, `${built.stderr}\n${node.log().slice(-3000)}`).toBe(0)
      // Progress lines while it builds, then the snapshot with its manifest.
      for (const phase of ["queued", "network", "booted", "setup", "ready"]) {
        expect(built.stderr).toMatch(new RegExp(`snapshot tools: ${phase} \\(`))
      }
      const printed = JSON.parse(built.stdout)
      expect(printed).toMatchObject({ name: "tools", node: "e2e-snap", status: "ready" })
      expect(printed.manifest.image.name).toBe("default")
      expect(built.stdout + built.stderr).not.toContain(secret)
      expect(built.stderr).toMatch(/snapshot tools: the setup script was refused echo\.test \(not in --allow\)/)
      expect(printed.refusedHosts).toEqual(["echo.test"])

      // The upstream got the credential from the proxy; the guest never had it.
      const fetched = world.received.filter((r) => r.host === "api.test" && r.url === "/setup-fetch")
      expect(fetched.length).toBe(1)
      expect(fetched[0]!.headers["x-api-key"]).toBe(secret)
      expect(world.received.some((r) => r.host === "echo.test")).toBe(false)
      expect(secretIn(snapshotDir("tools"))).toEqual([])
      expect(node.log() + control.log()).not.toContain(secret)
      expect(readdirSync(snapshotDir("tools")).sort()).toEqual(
        ["devices.mig", "disk.qcow2", "manifest.json", "memory.ram"],
      )

      // Listed with its manifest, over the API and the CLI.
      const list = await api("GET", "/v1/snapshots")
      const listed = list.body.find((s: any) => s.name === "tools")
      expect(listed).toMatchObject({ node: "e2e-snap", status: "ready", refusedHosts: ["echo.test"] })
      expect(listed.phases.map((p: any) => p.phase)).toContain("setup")
      expect(JSON.stringify(list.body)).not.toContain(secret)
      expect(listed.manifest).toMatchObject({ memoryMB: 256, vcpus: 1, image: { name: "default" } })
      expect(listed.manifest.image.hash).toMatch(/^[0-9a-f]{64}$/)
      expect(listed.manifest.cmdline).toMatch(/vm\.ip=/)
      expect(listed.manifest.devices.join(" ")).toContain("virtio-net-device")
      expect(listed.manifest.macPlan.guestMac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/)
      expect(Date.parse(listed.manifest.createdAt)).toBeGreaterThan(Date.now() - 10 * 60_000)
      expect(listed.manifest.buildMs.total).toBeGreaterThan(0)
      // Placement sees it at once (not at the next heartbeat), with the node's labels.
      const nodeInfo = (await api("GET", "/v1/nodes")).body.find((n: any) => n.id === "e2e-snap")
      expect(nodeInfo.labels).toEqual({ zone: "e2e", disk: "ssd" })
      expect(nodeInfo.snapshots).toContainEqual({ name: "tools", status: "ready" })
      expect(nodeInfo.snapshots).toContainEqual({ name: "default", status: "ready" })
      const rows = await paws(["image", "snapshots"], cli)
      expect(rows.stdout).toMatch(/^tools\s+e2e-snap\s+ready\s+default@[0-9a-f]{12}\s+256 MiB/m)

      // A session from the snapshot has the setup's files; a session from the image does not.
      // Both trust exactly one proxy CA (their own): the build's CA was removed before the pause.
      const fromSnapshot = await paws(
        ["run", "--snapshot", "tools", "--node", "zone=e2e", "--allow", "api.test", "--", probe],
        cli,
      )
      expect(fromSnapshot.code, fromSnapshot.stderr).toBe(0)
      expect(fromSnapshot.stdout).toContain("tools-ready\n200blocked\n")
      expect(fromSnapshot.stdout).toContain("api=200")
      const fromImage = await paws(["run", "--allow", "api.test", "--", probe], cli)
      expect(fromImage.code, fromImage.stderr).toBe(0)
      expect(fromImage.stdout).toContain("No such file")
      const certs = (s: string) => /certs=(\d+)/.exec(s)?.[1]
      expect(certs(fromSnapshot.stdout)).toBeDefined()
      expect(certs(fromSnapshot.stdout)).toBe(certs(fromImage.stdout))

      // Its image "rebuilt" (the manifest's hash no longer matches): listed as stale, sessions refused, saying why.
      const manifestPath = join(snapshotDir("tools"), "manifest.json")
      const manifest = JSON.parse(readFileSync(manifestPath, "utf8"))
      writeFileSync(
        manifestPath,
        JSON.stringify({ ...manifest, image: { ...manifest.image, inputHash: "0".repeat(64) } }),
      )
      const stale = await api("GET", "/v1/snapshots/tools")
      expect(stale.body).toMatchObject({ status: "stale" })
      expect(stale.body.error).toMatch(
        /image "default" was rebuilt since .*rebuild it with "paws image snapshot tools"/,
      )
      const refused = await paws(["run", "--snapshot", "tools", "--", "true"], cli)
      expect(refused.code).toBe(1)
      expect(refused.stderr).toMatch(/snapshot "tools" cannot be restored: image "default" was rebuilt since/)

      const removed = await paws(["image", "rm", "tools"], cli)
      expect(removed.code, removed.stderr).toBe(0)
      expect((await api("GET", "/v1/snapshots/tools")).status).toBe(404)
      expect(existsSync(snapshotDir("tools"))).toBe(false)
      const again = await paws(["image", "rm", "tools"], cli)
      expect(again.code).toBe(1)
      expect(again.stderr).toMatch(/no snapshot "tools"/)
      // Gone from every node: a session for it is refused up front, naming the fix, instead of queued forever.
      const orphan = await paws(["run", "--snapshot", "tools", "--", "true"], cli)
      expect(orphan.code).toBe(1)
      expect(orphan.stderr).toMatch(/SnapshotUnavailable: no node holds snapshot "tools"; build it/)
      expect(await Effect.runPromise(leftovers(world.netns))).toEqual({ taps: [], tables: [], processes: [] })
    },
    600_000,
  )

  it("a failing setup script: the CLI says why and how to fix it; GET shows the failed build", async () => {
    const failed = await paws(["image", "snapshot", "broken", "--", "echo trying; exit 3"], cli)
    expect(failed.code).toBe(1)
    expect(failed.stderr).toMatch(/snapshot broken failed: setup script exited 3/)
    expect(failed.stderr).toMatch(/fix the setup script/)
    const view = await api("GET", "/v1/snapshots/broken")
    expect(view.body).toMatchObject({ name: "broken", status: "failed" })
    expect(existsSync(snapshotDir("broken"))).toBe(false)
    expect((await api("DELETE", "/v1/snapshots/broken")).status).toBe(204)
    const bad = await paws(["image", "snapshot", "Bad Name"], cli)
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/snapshot name "Bad Name" must be 1-64 characters of a-z 0-9 \. _ -/)
    expect(await Effect.runPromise(leftovers(world.netns))).toEqual({ taps: [], tables: [], processes: [] })
  }, 300_000)

  it(
    "a node started without PAWS_NODE_DEFAULT_SNAPSHOT builds the default snapshot in the background; sessions then restore it",
    async () => {
      await node.kill("SIGTERM")
      const { PAWS_NODE_DEFAULT_SNAPSHOT: _, ...env } = world.nodeEnv
      const created = await paws(["nodes", "token", "create", "--name", "e2e-default"], cli)
      node = startPaws(["node"], {
        ...env,
        PAWS_DATA_DIR: join(world.dir, "node-default"),
        PAWS_CONTROL_URL: url,
        PAWS_NODE_TOKEN: created.stdout.trim(),
        PAWS_NODE_ID: "e2e-default",
        PAWS_NODE_MAX_VMS: "2",
      })
      const defaultOn = async () =>
        ((await api("GET", "/v1/snapshots")).body as Array<any>).find((s) =>
          s.name === "default" && s.node === "e2e-default"
        )
      // Visible while it builds (the node reports its own build), then ready with its manifest.
      const building = await waitUntil("default building", defaultOn, (s) => s?.status === "building", 120_000)
      expect(typeof building.phase).toBe("string")
      const ready = await waitUntil("default ready", defaultOn, (s) => s?.status === "ready", 240_000)
      expect(ready.manifest).toMatchObject({ memoryMB: 256, vcpus: 1, image: { name: "default" } })
      expect(node.log()).toMatch(/snapshot default built in \d+ ms/)
      const run = await paws(["run", "--", "echo from-default"], cli)
      expect(run.code, run.stderr).toBe(0)
      expect(run.stdout).toContain("from-default")
      expect(node.log()).toMatch(/vm\(restored\)/)
    },
    400_000,
  )
})
