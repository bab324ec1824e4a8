import { ConfigProvider, Layer } from "effect"
import * as os from "node:os"
import * as path from "node:path"
import { NodeSshKey } from "../../src/guest/NodeSshKey.ts"
import { ImageBuilder } from "../../src/image/ImageBuilder.ts"
import { ImageStore } from "../../src/image/ImageStore.ts"

/**
 * One data dir for all VM tests (and runs): the image is content-cached there, so only the first
 * test file of the first run builds it (~15 s + download); a dir lock serialises parallel files.
 */
export const testDataDir = process.env.PAWS_TEST_DATA_DIR ?? path.join(os.tmpdir(), "paws-test-data")

/** In-process nodes have no control replica to hand a session over to: one whose stream closes stops at once. */
export const testConfig = (extra: Record<string, string> = {}) =>
  ConfigProvider.layer(
    ConfigProvider.fromEnvRecord({ PAWS_DATA_DIR: testDataDir, PAWS_NODE_ADOPT_GRACE_MS: "0", ...extra }),
  )

/** ImageBuilder + ImageStore + NodeSshKey over the shared test data dir. */
export const testImageLayer = (extra: Record<string, string> = {}) =>
  Layer.mergeAll(ImageBuilder.layerNoDeps, ImageStore.layer).pipe(
    Layer.provideMerge(NodeSshKey.layer),
    Layer.provide(testConfig(extra)),
  )
