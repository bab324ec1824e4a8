import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { type Browser, chromium, type Page } from "playwright-core"

/** Debian's Chromium (.ci/setup installs it), headless, quiet, nothing fetched from the internet. */
export const launchChromium = (): Promise<Browser> =>
  chromium.launch({
    executablePath: "/usr/bin/chromium",
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

/** Where browser tests leave their screenshots (gitignored). */
export const screenshotDir = (suite: string): string => {
  const dir = join(fileURLToPath(new URL("../../../test-output", import.meta.url)), suite)
  mkdirSync(dir, { recursive: true })
  return dir
}

/**
 * Decodes a PNG in the browser itself (no PNG library here) and measures it: how many distinct
 * colours and the variance of luminance. A blank or single-colour page has one colour and zero variance.
 */
export const pixelStats = (page: Page, png: Buffer): Promise<{ colours: number; variance: number }> =>
  page.evaluate(async (base64) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))
    const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }))
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height)
    const context = canvas.getContext("2d")!
    context.drawImage(bitmap, 0, 0)
    const { data } = context.getImageData(0, 0, bitmap.width, bitmap.height)
    const colours = new Set<number>()
    let sum = 0
    let squares = 0
    const n = data.length / 4
    for (let i = 0; i < data.length; i += 4) {
      const luma = 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!
      sum += luma
      squares += luma * luma
      if (colours.size < 1000) colours.add((data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!)
    }
    return { colours: colours.size, variance: squares / n - (sum / n) ** 2 }
  }, png.toString("base64"))
