import { escapeNodeConfig, escapeSuite } from "./support/EscapeSuite.ts"
import { testNodeLayer } from "./support/TestNode.ts"

// Cold-booted VMs (no snapshot in the shared test data dir); escape-restored.test.ts runs the same
// suite against clones restored from a snapshot.
escapeSuite("escape suite (from inside a real cold-booted VM)", testNodeLayer(escapeNodeConfig), false)
