import { intSetting } from "@paws/core/Settings"

/** Limits of what sessions with a memory key (daemon invocations) carry over; part of ControlConfig's table. */
export const memorySettings = {
  stateMaxBytes: intSetting(
    "PAWS_STATE_MAX_BYTES",
    8 * 1024 * 1024,
    "largest /state archive (tar.gz bytes) a daemon may save; a bigger one is not saved and the last good state stays",
    { min: 1024, max: 256 * 1024 * 1024 },
  ),
  stateGenerations: intSetting(
    "PAWS_STATE_GENERATIONS",
    3,
    "saved /state generations kept per daemon (the newest is restored)",
    { max: 100 },
  ),
  llmBodyMaxBytes: intSetting(
    "PAWS_LLM_HISTORY_BODY_MAX_BYTES",
    256 * 1024,
    "LLM history: each recorded request or response body is cut at this many bytes",
    { min: 1024, max: 16 * 1024 * 1024 },
  ),
  llmMaxEntries: intSetting(
    "PAWS_LLM_HISTORY_MAX_ENTRIES",
    500,
    "LLM history: exchanges kept per daemon (the oldest go first)",
    { max: 1_000_000 },
  ),
  llmRetentionDays: intSetting(
    "PAWS_LLM_HISTORY_RETENTION_DAYS",
    30,
    "LLM history: exchanges older than this are deleted",
    { max: 36_500 },
  ),
  llmInputMaxBytes: intSetting(
    "PAWS_LLM_HISTORY_INPUT_MAX_BYTES",
    4 * 1024 * 1024,
    "LLM history: most of it (newest first) written to /input/history.jsonl of the next invocation",
    { min: 1024, max: 64 * 1024 * 1024 },
  ),
}
