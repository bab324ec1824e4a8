/**
 * Whether this process was asked to stop (SIGTERM/SIGINT). While a replica stops, its HTTP server closes
 * the node links before the Dispatcher's fibers are interrupted: a link closing then is this replica going
 * away, not the node's loss, and the sessions on it are left for the replica that takes them over.
 * One listener per process, however many replicas it runs (tests).
 */
let stopping = false
let listening = false

export const processStopping = (): () => boolean => {
  if (!listening) {
    listening = true
    const stop = () => void (stopping = true)
    process.once("SIGTERM", stop)
    process.once("SIGINT", stop)
  }
  return () => stopping
}
