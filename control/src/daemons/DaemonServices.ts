import { Layer } from "effect"
import { CronScheduler } from "./CronScheduler.ts"
import { DaemonConfig } from "./DaemonConfig.ts"
import { DaemonInvoker } from "./DaemonInvoker.ts"
import { DaemonQuotas } from "./DaemonQuotas.ts"
import { Daemons } from "./Daemons.ts"
import { DaemonStore } from "./DaemonStore.ts"
import { WatchPoller } from "./WatchPoller.ts"

/** Daemons and their triggers, on top of the control services (sessions, vault, database). */
export const DaemonServices = Layer.mergeAll(CronScheduler.layer, WatchPoller.layer).pipe(
  Layer.provideMerge(DaemonInvoker.layer),
  Layer.provideMerge(Daemons.layer),
  Layer.provideMerge(Layer.mergeAll(DaemonStore.layer, DaemonConfig.layer, DaemonQuotas.layer)),
)
