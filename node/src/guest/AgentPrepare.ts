import type { Effect } from "effect"
import { caBundlePath, caEnv, caPath, envPath, scriptPath, shellQuote } from "./GuestSetup.ts"
import type { GuestAgent, GuestAgentError } from "./GuestAgent.ts"

/**
 * GuestSetup.prepareGuestCommand for a restored guest, as the agent's own file writes: right after
 * a resume every new guest process is slow, and this needs none. The writes go out as one batch
 * (one round trip, answered in order) and the caller starts the workload only once every one is
 * `ok`. The clock and /etc/resolv.conf (the slot's DNS, the same address) were already set by the
 * restore.
 */
export const prepareViaAgent = (
  agent: GuestAgent,
  o: { readonly caPem: string; readonly env: string; readonly script: string },
): Effect.Effect<void, GuestAgentError> => {
  const caExports = Object.entries(caEnv).map(([k, v]) => `export ${k}=${shellQuote(v)}`).join("\n") + "\n"
  return agent.batch([
    { _tag: "mkdir", path: "/output" },
    { _tag: "write", path: caPath, contents: o.caPem },
    { _tag: "write", path: caBundlePath, contents: o.caPem, append: true },
    { _tag: "write", path: "/etc/profile.d/paws-ca.sh", contents: caExports },
    { _tag: "write", path: envPath, contents: o.env, mode: 0o600 },
    { _tag: "write", path: scriptPath, contents: o.script, mode: 0o755 },
  ])
}
