#!/usr/bin/env node
// The `paws` command. The CLI is TypeScript (../src/bin.ts) that Node runs by type stripping, which this project
// targets on Node 24. This launcher is plain JavaScript so that any `node` on PATH can start it: on Node 24 or newer
// with type stripping on, it runs the CLI in-process; otherwise (an older Node, or stripping turned off) it re-runs
// the CLI under the checkout's own Node 24 (the `node` package in devDependencies, installed by `npm install`), and
// without that it says what to install. Type stripping refuses files under node_modules, so paws is installed as a
// link to a checkout (`npm install -g ./clients`, or `npx paws` inside it), never copied from a tarball.
import { spawn } from "node:child_process"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const entry = fileURLToPath(new URL("../src/bin.ts", import.meta.url))
const major = Number(process.versions.node.split(".")[0])
const canRunTypeScript = major >= 24 && Boolean(process.features.typescript)

const projectNode = () => {
  try {
    return join(dirname(createRequire(import.meta.url).resolve("node/package.json")), "bin", "node")
  } catch {
    return undefined
  }
}

if (canRunTypeScript) {
  const { main } = await import(entry)
  main()
} else {
  const node = projectNode()
  if (node === undefined) {
    process.stderr.write(
      `paws needs Node.js 24 or newer with type stripping (this is ${process.version}): install it, or run ` +
        "`npm install` in the paws checkout, which brings its own Node 24.\n",
    )
    process.exit(1)
  }
  const child = spawn(node, [entry, ...process.argv.slice(2)], { stdio: "inherit" })
  // Ctrl-C reaches the child from the terminal itself; other signals are passed on.
  process.on("SIGINT", () => {})
  for (const signal of ["SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal))
  child.on("exit", (code, signal) => {
    if (signal !== null) process.kill(process.pid, signal)
    else process.exit(code ?? 1)
  })
}
