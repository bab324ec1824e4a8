import { Context, Data, Effect, Layer, Option } from "effect"
import type { Scope } from "effect"
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as net from "node:net"
import { fileURLToPath } from "node:url"
import { nodeSettings } from "../NodeConfig.ts"

export class DialError extends Data.TaggedError("DialError")<{ readonly message: string }> {}

export interface Dialer {
  /** A connected TCP socket to host:port, from inside the namespace when there is one. */
  readonly dial: (host: string, port: number, timeoutMs: number) => Effect.Effect<net.Socket, DialError>
  readonly netns: string | undefined
}

const childScript = fileURLToPath(new URL("./netns-dial-child.ts", import.meta.url))

/**
 * Dials guests. They sit behind TAPs in the node's netns (config `PAWS_NODE_NETNS`, always set
 * in tests), which this process is not in; a small helper inside the netns connects and hands
 * the socket back by fd passing, so only one helper runs per netns, for the node's lifetime.
 */
export class NetnsDialer extends Context.Service<NetnsDialer, Dialer>()("paws/guest/NetnsDialer") {
  static readonly make = (netns: string | undefined): Effect.Effect<Dialer, DialError, Scope.Scope> =>
    netns === undefined ? Effect.succeed(direct) : inNetns(netns)

  static readonly layer = Layer.effect(
    NetnsDialer,
    Effect.gen(function* () {
      const netns = yield* nodeSettings.netns.config
      return NetnsDialer.of(yield* NetnsDialer.make(Option.getOrUndefined(netns)))
    }),
  )
}

const direct: Dialer = {
  netns: undefined,
  dial: (host, port, timeoutMs) =>
    Effect.callback<net.Socket, DialError>((resume) => {
      const s = net.connect({ host, port, timeout: timeoutMs })
      s.once("connect", () => {
        s.setTimeout(0)
        resume(Effect.succeed(s))
      })
      s.once("timeout", () => s.destroy(new Error(`connect timeout after ${timeoutMs} ms`)))
      s.once("error", (e) => resume(Effect.fail(new DialError({ message: e.message }))))
      return Effect.sync(() => s.destroy())
    }),
}

const inNetns = (netns: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startChild(netns),
      catch: (e) => new DialError({ message: `netns ${netns} dial helper: ${(e as Error).message}` }),
    }),
    (child) =>
      Effect.promise(() =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once("exit", () => resolve())
          child.kill("SIGKILL")
        })
      ),
  ).pipe(Effect.map((child): Dialer => {
    let nextId = 0
    const pending = new Map<number, (reply: { ok: boolean; error?: string }, socket?: net.Socket) => void>()
    child.on("message", (msg: { id?: number; ok: boolean; error?: string }, socket?: net.Socket) => {
      if (msg.id !== undefined) pending.get(msg.id)?.(msg, socket)
    })
    child.on("exit", () => {
      for (const [, p] of pending) p({ ok: false, error: "dial helper exited" })
    })
    return {
      netns,
      dial: (host, port, timeoutMs) =>
        Effect.callback<net.Socket, DialError>((resume) => {
          const id = nextId++
          pending.set(id, (reply, socket) => {
            pending.delete(id)
            if (reply.ok && socket) {
              socket.resume()
              resume(Effect.succeed(socket))
            } else resume(Effect.fail(new DialError({ message: reply.error ?? "no socket" })))
          })
          if (!child.connected) return resume(Effect.fail(new DialError({ message: "dial helper is gone" })))
          child.send({ id, host, port, timeoutMs })
          return Effect.sync(() => pending.delete(id))
        }),
    }
  }))

const startChild = (netns: string) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const child = spawn("ip", ["netns", "exec", netns, process.execPath, childScript], {
      stdio: ["ignore", "ignore", "inherit", "ipc"],
    })
    child.once("error", reject)
    child.once("exit", (code) => reject(new Error(`exited with ${code} before it was ready`)))
    child.once("message", (m: { ready?: boolean }) => (m.ready ? resolve(child) : reject(new Error("bad hello"))))
  })
