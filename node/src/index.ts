/**
 * @paws/node: what other packages use of the node. The CLI lazily imports `NodeApp` (`paws node`,
 * `paws up`) and `ImageBuilder` (`paws up` builds the guest image); tests reach internals by path.
 */
export { NodeApp, NodeServices } from "./main.ts"
export { ImageBuilder } from "./image/ImageBuilder.ts"
export { NodeConfig, nodeSettings } from "./NodeConfig.ts"
export { builtinRecipes, minimalImageNames, saveRecipe } from "./image/ImageCatalogue.ts"
export { imageDirConfig, readManifest } from "./image/GuestImage.ts"
export { parseNpmSpec } from "./image/NpmPackages.ts"
