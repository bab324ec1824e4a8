"use strict"
/**
 * Starts the proxy from its bundle (ProxyBundleBuild.ts): `node ProxyLoader.cjs <dir>/proxy-<key>.cjs`.
 * Plain CommonJS, not TypeScript: stripping types would cost a spawn ~50 ms. The bundle is compiled
 * with the V8 code cache made for it beside it (`.code`), so a proxy skips parsing and compiling
 * what the cache holds (a cache missing or rejected by V8 only costs time, and is said on stderr).
 * `--write-code-cache <file>`: run the proxy without a cache and, as it exits, write the cache of
 * everything compiled by then.
 */
const { readFileSync, writeFileSync } = require("node:fs")
const { createRequire } = require("node:module")
const { dirname, resolve } = require("node:path")
const vm = require("node:vm")

const [bundleArg, mode, cacheOut] = process.argv.slice(2)
if (bundleArg === undefined) throw new Error("usage: ProxyLoader.cjs <bundle.cjs> [--write-code-cache <file>]")
const bundle = resolve(bundleArg)
let cachedData
if (mode === undefined) {
  try {
    cachedData = readFileSync(bundle.replace(/\.cjs$/, ".code"))
  } catch (error) {
    // The build always writes one: its absence is worth a line, and costs only time.
    process.stderr.write(`paws proxy: no code cache beside the bundle (${error.code}); starting without it\n`)
  }
}
const wrapped = `(function (exports, require, module, __filename, __dirname) {${readFileSync(bundle, "utf8")}\n})`
const script = new vm.Script(wrapped, { filename: bundle, cachedData })
const rejected = cachedData !== undefined && script.cachedDataRejected
cachedData = undefined // ~0.7 MiB, not needed once compiled
const bundled = { exports: {} }
script.runInThisContext()(bundled.exports, createRequire(bundle), bundled, bundle, dirname(bundle))

if (mode === "--write-code-cache") {
  // The proxy runs as any other (its builder gives it a loopback config, waits for ready, closes
  // stdin): the cache then holds what a start runs, not only the module's top level.
  process.on("exit", () => writeFileSync(cacheOut, script.createCachedData()))
} else if (rejected) {
  process.stderr.write("paws proxy: the code cache beside the bundle was rejected; starting without it\n")
}
bundled.exports.runProxy()
