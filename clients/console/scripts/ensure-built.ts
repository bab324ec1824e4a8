import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

/** The console package's directory and the built index (clients/console/dist, gitignored). */
const consoleDir = fileURLToPath(new URL("..", import.meta.url))
export const consoleIndex = fileURLToPath(new URL("../dist/index.html", import.meta.url))

/**
 * Builds the console with Vite: always with `--always` (npm install's `prepare`: sources may have
 * changed), else only when no build is there (`npm start`, tests). Vite is a runtime dependency of the
 * console package so that installs without dev dependencies (the container, the Nix package) build it too.
 */
export const ensureConsoleBuilt = async (options: { readonly always?: boolean } = {}): Promise<void> => {
  if (options.always !== true && existsSync(consoleIndex)) return
  const vite = await import("vite").catch(() => undefined)
  if (vite === undefined) {
    console.warn(
      `paws console: vite is not installed (dev dependencies omitted); ${
        existsSync(consoleIndex) ? "keeping the existing build" : "control will answer / with 503 until it is built"
      }`,
    )
    return
  }
  await vite.build({ root: consoleDir, logLevel: "warn" })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await ensureConsoleBuilt({ always: process.argv.includes("--always") })
}
