import { connect, createServer, type Server, type Socket } from "node:net"

/**
 * A TCP load balancer on loopback, as a cluster would put in front of control replicas: each
 * connection goes to the next backend in turn, or to the other one when that refuses. A backend
 * that dies closes its connections, so the clients behind them redial (and land on a live one).
 */
export const startFailoverBalancer = async (backends: ReadonlyArray<number>) => {
  let next = 0
  const open = new Set<Socket>()
  const dial = (client: Socket, tries: number) => {
    const port = backends[next++ % backends.length]!
    const upstream = connect(port, "127.0.0.1")
    let connected = false
    upstream.once("connect", () => {
      connected = true
      open.add(upstream)
      client.pipe(upstream).pipe(client)
      client.resume()
    })
    upstream.on("error", () => {
      // Refused: try the next backend; broken after connecting: "close" ends the client.
      if (!connected) tries > 1 ? dial(client, tries - 1) : client.destroy()
    })
    upstream.once("close", () => {
      open.delete(upstream)
      if (connected) client.destroy()
    })
    client.once("close", () => upstream.destroy())
  }
  const server: Server = createServer({ pauseOnConnect: true }, (client) => {
    open.add(client)
    client.once("close", () => open.delete(client))
    client.on("error", () => client.destroy())
    dial(client, backends.length)
  })
  const port = await new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port))
  )
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy()
        server.close(() => resolve())
      }),
  }
}
