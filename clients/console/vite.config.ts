import { defineConfig } from "vite"

/** Hashed assets under /assets/, every byte bundled (no CDN); JSX through Oxc with Preact's runtime. */
export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
})
