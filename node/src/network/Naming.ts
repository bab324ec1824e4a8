/**
 * How the node names what it creates, so that every TAP, firewall table and process can be
 * traced back to its session (and removed by the reconciler when no live session owns it).
 *
 * - TAP device: `pw` + the last 12 hex chars of the session id (the UUIDv7 random tail; Linux
 *   limits interface names to 15 chars). The full id is stored as the link's alias
 *   (`ip link set … alias "paws-session=<uuid>"`), which is the mapping back to the session.
 * - nftables table: `inet paws_<session id without dashes>` (one table per VM, with a comment
 *   carrying the full id).
 * - Processes: the proxy gets environment variable `PAWS_SESSION_ID=<uuid>`; QEMU runs with
 *   `-name paws-<uuid>` (set by the Vmm driver).
 * - Warm clones (WarmVmPool) belong to no session until taken: their slot, table, QEMU and run dir are
 *   named after a pool id minted like a session id, and keep it once taken. A killed node's pool
 *   is therefore removed by the start reconcile like any other leftover, and a reconcile with a
 *   live set (none runs today) would have to count the pool's ids as live.
 */
export const tapPrefix = "pw"
export const tablePrefix = "paws_"
export const aliasPrefix = "paws-session="
export const sessionEnvVar = "PAWS_SESSION_ID"

const hexOnly = (sessionId: string): string => sessionId.replace(/-/g, "").toLowerCase()

export const tapName = (sessionId: string): string => tapPrefix + hexOnly(sessionId).slice(-12)
export const tableName = (sessionId: string): string => tablePrefix + hexOnly(sessionId)
export const tapAlias = (sessionId: string): string => aliasPrefix + sessionId

export const isPawsTap = (name: string): boolean => /^pw[0-9a-f]{12}$/.test(name)
export const isPawsTable = (name: string): boolean => /^paws_[0-9a-f]{32}$/.test(name)

/** The session id back from a table name (dashes restored in UUID layout). */
export const sessionIdOfTable = (name: string): string | undefined => {
  if (!isPawsTable(name)) return undefined
  const h = name.slice(tablePrefix.length)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** Fixed MACs: a guest restored from a snapshot keeps the gateway's MAC in its ARP cache. */
export const hostMac = "02:00:00:00:00:01"
export const guestMac = "52:54:00:00:00:02"
