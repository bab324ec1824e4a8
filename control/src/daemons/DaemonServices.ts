import { Layer } from "effect"
import { DaemonConfig } from "./DaemonConfig.ts"
import { DaemonInvoker } from "./DaemonInvoker.ts"
import { Daemons } from "./Daemons.ts"
import { DaemonStore } from "./DaemonStore.ts"

/** Daemons and their triggers, on top of the control services (sessions, vault, database). */
export const DaemonServices = DaemonInvoker.layer.pipe(
  Layer.provideMerge(Daemons.layer),
  Layer.provideMerge(Layer.mergeAll(DaemonStore.layer, DaemonConfig.layer)),
)
