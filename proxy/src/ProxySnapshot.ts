/**
 * Entry of the proxy's startup snapshot (built by ProxySnapshotBuild.ts): every module of the proxy
 * is loaded and initialised while the snapshot is built, so a proxy started from the blob skips
 * reading, parsing and running ~1 MB of JavaScript and goes straight to `runProxy`, which makes
 * this process's own CA (nothing random or per-process is made before it).
 */
import { startupSnapshot } from "node:v8"
import { prepareAuthority } from "./ProxyServer.ts"
import { runProxy } from "./ProxyProgram.ts"

// A throw-away CA made once while building: the certificate code (pkijs, asn1js) then runs warm
// in every proxy. Nothing of it is kept: the snapshot holds no key, certificate or reference to one.
void prepareAuthority()
startupSnapshot.setDeserializeMainFunction(runProxy)
