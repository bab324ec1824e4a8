import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

/** The console package's directory and the built index (clients/console/dist, gitignored). */
const consoleDir = fileURLToPath(new URL("..", import.meta.url))
export const consoleIndex = fileURLToPath(new URL("../dist/index.html", import.meta.url))

/** Builds the console with Vite unless a build is already there (`npm start`, tests; `npm install` always builds). */
export const ensureConsoleBuilt = async (): Promise<void> => {
  if (existsSync(consoleIndex)) return
  const { build } = await import("vite")
  await build({ root: consoleDir, logLevel: "warn" })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await ensureConsoleBuilt()
