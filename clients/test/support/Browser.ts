import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { chromium } from "playwright-core"

/** Debian's `chromium` (.ci/setup installs it): the tests drive a real browser, never a downloaded one. */
export const chromiumPath = "/usr/bin/chromium"

/**
 * Real Chromium, headless, with a fresh profile that is removed on close. Quiet: no sandbox (tests
 * run as root), no GPU, no QUIC, nothing fetched in the background, so its only traffic is the
 * test's own (to loopback).
 */
export const launchChromium = async () => {
  const profile = mkdtempSync(join(tmpdir(), "paws-chromium-"))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  })
  const page = context.pages()[0] ?? await context.newPage()
  return {
    context,
    page,
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}
