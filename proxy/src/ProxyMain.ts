/** Runs the proxy from source (main.ts imports this once the compile cache is on). */
import { runProxy } from "./ProxyProgram.ts"

runProxy()
