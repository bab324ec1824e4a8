import { Effect } from "effect"
import { caBundlePath, caEnv, caPath, envPath, scriptPath, shellQuote } from "./GuestSetup.ts"
import type { GuestAgent, GuestAgentError } from "./GuestAgent.ts"

/**
 * GuestSetup.prepareGuestCommand for a restored guest, as the agent's own file writes: right after
 * a resume every new guest process is slow, and this needs none. The clock and /etc/resolv.conf
 * (the slot's DNS, the same address) were already set by the restore.
 */
export const prepareViaAgent = (
  agent: GuestAgent,
  o: { readonly caPem: string; readonly env: string; readonly script: string },
): Effect.Effect<void, GuestAgentError> =>
  Effect.gen(function* () {
    yield* agent.mkdir("/output")
    yield* agent.writeFile(caPath, o.caPem)
    yield* agent.writeFile(caBundlePath, o.caPem, { append: true })
    const caExports = Object.entries(caEnv).map(([k, v]) => `export ${k}=${shellQuote(v)}`).join("\n") + "\n"
    yield* agent.writeFile("/etc/profile.d/paws-ca.sh", caExports)
    yield* agent.writeFile(envPath, o.env, { mode: 0o600 })
    yield* agent.writeFile(scriptPath, o.script, { mode: 0o755 })
  })
