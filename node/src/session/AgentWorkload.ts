import type { AgentWorkload, Workload } from "@paws/core"
import { mcpHost } from "@paws/core"
import { resultPath, shellQuote } from "../guest/GuestSetup.ts"

/** What the guest runs for a workload: a script (on stdin of `sh`) and its environment. */
export interface GuestWorkload {
  readonly script: string
  readonly env: Readonly<Record<string, string>> | undefined
}

/**
 * The API key the agent sees: per session and useless outside it. The proxy replaces the
 * `x-api-key`/`Authorization` header for api.anthropic.com with the session's real credential,
 * so the real key is never in the guest's env, disk or memory.
 */
export const placeholderApiKey = (sessionId: string) => `sk-ant-paws-placeholder-${sessionId}`

const transcriptPath = "/tmp/paws-agent-transcript.jsonl"
/** The session's MCP servers as an MCP client config (Claude Code's `--mcp-config` format), for any agent. */
export const mcpConfigPath = "/tmp/paws-mcp.json"

/** Each server the session may use, as the Streamable HTTP endpoint its proxy forwards to the node's gateway. */
export const mcpClientConfig = (servers: ReadonlyArray<string>) => ({
  mcpServers: Object.fromEntries(servers.map((name) => [name, { type: "http", url: `https://${mcpHost}/${name}` }])),
})

/** Claude Code, non-interactive: stream-json transcript on stdout; no updater, telemetry or other traffic. */
const claudeCode = (w: AgentWorkload, mcpServers: ReadonlyArray<string>): string => {
  const args = ["claude", "-p", "--output-format", "stream-json", "--verbose"]
  if (mcpServers.length > 0) args.push("--mcp-config", mcpConfigPath, "--strict-mcp-config")
  if (w.model !== undefined) args.push("--model", w.model)
  if (w.maxTurns !== undefined) args.push("--max-turns", String(w.maxTurns))
  // the VM is the sandbox: without an explicit tool list every tool may run
  // the gateway enforces the session's per-server tool allowlists; the agent may call what it lists
  if (w.allowedTools !== undefined) {
    args.push(
      "--allowedTools",
      ...w.allowedTools,
      ...mcpServers.map((s) => `mcp__${s}`),
    )
  } else args.push("--permission-mode", "bypassPermissions")
  return args.map(shellQuote).join(" ")
}

/** The final answer: the `result` event's text, as the JSON string in /output/result.json. */
const extractAnswer = `node -e ${
  shellQuote(
    `const fs=require("fs");let r;for(const l of fs.readFileSync(${
      JSON.stringify(transcriptPath)
    },"utf8").split("\\n")){try{const e=JSON.parse(l);if(e.type==="result")r=e}catch{}}` +
      `if(r&&typeof r.result==="string")fs.writeFileSync(${JSON.stringify(resultPath)},JSON.stringify(r.result))`,
  )
}`

/** A script workload as is (interactive: an empty one); an agent workload as the shell script that runs the agent in the guest. */
export const guestWorkload = (
  workload: Workload,
  sessionId: string,
  mcpServers: ReadonlyArray<string> = [],
): GuestWorkload => {
  if (workload.type === "script") return { script: workload.script, env: workload.env }
  // interactive: nothing runs by itself; exec and shells source the env file
  if (workload.type === "interactive") return { script: "", env: workload.env }
  const prompt = Buffer.from(workload.prompt, "utf8").toString("base64")
  const mcpConfig = Buffer.from(JSON.stringify(mcpClientConfig(mcpServers))).toString("base64")
  const decodePrompt = [
    `printf '%s' '${prompt}' | base64 -d > /tmp/paws-agent-prompt`,
    ...(mcpServers.length === 0 ? [] : [`printf '%s' '${mcpConfig}' | base64 -d > ${mcpConfigPath}`]),
  ].join("\n")
  // a custom agent: its argv with the prompt on stdin; its stdout is the transcript, and it writes
  // /output/result.json itself, as a script does
  const script = workload.agent === "custom"
    ? [decodePrompt, `exec ${(workload.command ?? ["false"]).map(shellQuote).join(" ")} < /tmp/paws-agent-prompt`]
      .join("\n")
    : [
      decodePrompt,
      `{ ${
        claudeCode(workload, mcpServers)
      } < /tmp/paws-agent-prompt; echo $? > /tmp/paws-agent-rc; } | tee ${transcriptPath}`,
      extractAnswer,
      `exit "$(cat /tmp/paws-agent-rc)"`,
    ].join("\n")
  return {
    script,
    env: {
      ...workload.env,
      ANTHROPIC_API_KEY: placeholderApiKey(sessionId),
      IS_SANDBOX: "1",
      DISABLE_AUTOUPDATER: "1",
      DISABLE_TELEMETRY: "1",
      DISABLE_ERROR_REPORTING: "1",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      ...(mcpServers.length === 0 ? {} : { PAWS_MCP_CONFIG: mcpConfigPath }),
    },
  }
}
