import { execFile } from "node:child_process"
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { promisify } from "node:util"

/** The fenced code blocks of one language in a README, in order. */
export const codeBlocks = (readme: string, language: string): Array<string> =>
  [...readFileSync(readme, "utf8").matchAll(new RegExp("```" + language + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1]!)

/**
 * Runs one README example as a program beside the package (so its imports resolve as a user's would)
 * and returns its stdout; a non-zero exit fails with its stderr.
 */
export const runExample = async (
  command: string,
  dir: string,
  file: string,
  code: string,
  env: Record<string, string>,
): Promise<string> => {
  const path = join(dir, file)
  writeFileSync(path, code)
  try {
    const { stdout } = await promisify(execFile)(command, [path], {
      env: { ...process.env, ...env },
      timeout: 60_000,
    }).catch((e: { stdout: string; stderr: string; message: string }) => {
      throw new Error(`${file} failed: ${e.message}\n${e.stdout}\n${e.stderr}`)
    })
    return stdout
  } finally {
    rmSync(path, { force: true })
  }
}
