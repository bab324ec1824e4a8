import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { binPath, paws, startControl } from "./support/CliProcess.ts"

// `paws top` in a real terminal: tmux gives it a TTY, so it redraws in place and reads q in raw mode.
let control: Awaited<ReturnType<typeof startControl>>
let env: Record<string, string>
const session = `paws-top-${process.pid}`
const tmux = (...args: Array<string>) => execFileSync("tmux", args, { encoding: "utf8" })
const screen = () => tmux("capture-pane", "-p", "-t", session)

const waitFor = async (predicate: (text: string) => boolean, ms: number): Promise<string> => {
  const deadline = Date.now() + ms
  let text = ""
  while (Date.now() < deadline) {
    text = screen()
    if (predicate(text)) return text
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`screen never matched:\n${text}`)
}

beforeAll(async () => {
  control = await startControl()
  const key = readFileSync(join(control.dir, ".paws", "admin.key"), "utf8").trim()
  env = { PAWS_URL: control.url, PAWS_API_KEY: key, PAWS_CONFIG: join(control.dir, "none.json") }
})
afterAll(async () => {
  try {
    tmux("kill-session", "-t", session)
  } catch {
    // already gone: the test quit it
  }
  await control?.stop()
})

describe("paws top in a terminal", () => {
  it("refreshes in place with new sessions and quits on q", async () => {
    const exports = Object.entries(env).map(([k, v]) => `${k}='${v}'`).join(" ")
    tmux(
      "new-session",
      "-d",
      "-s",
      session,
      "-x",
      "120",
      "-y",
      "30",
      `env ${exports} ${process.execPath} ${binPath} top --interval 300; echo TOP-EXITED=$?; sleep 30`,
    )
    const first = await waitFor((t) => t.includes("paws top") && t.includes("(no active sessions)"), 30_000)
    expect(first).toContain("NODE")
    // Redrawn in place: the header appears once on the screen, not once per refresh.
    expect(first.split("\n").filter((l) => l.startsWith("paws top")).length).toBe(1)

    const created = await paws(["run", "-d", "--", "echo", "hi"], env)
    const id = created.stdout.trim()
    const second = await waitFor((t) => t.includes(id), 15_000)
    expect(second).toContain("queued 1")
    expect(second.split("\n").filter((l) => l.startsWith("paws top")).length).toBe(1)

    tmux("send-keys", "-t", session, "q")
    const after = await waitFor((t) => t.includes("TOP-EXITED="), 10_000)
    expect(after).toContain("TOP-EXITED=0")
  })
})
