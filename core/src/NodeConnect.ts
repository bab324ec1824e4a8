/** Where nodes call home: a WebSocket carrying NodeRpcs, control as the client. */
export const nodeConnectPath = "/v1/nodes/connect"

/** The header that tells control which node is calling (checked with the token before the upgrade). */
export const nodeIdHeader = "x-paws-node-id"

/** The call-home WebSocket URL for a control plane's base URL (http → ws, https → wss). */
export const nodeConnectUrl = (controlUrl: string): string => {
  const url = new URL(nodeConnectPath, controlUrl)
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:"
  return url.toString()
}
