// The client port's connection caps. The port is a plain TCP listener that
// counts open connections, in all and per source address, closes one over
// either cap at accept (before TLS: it costs the node no handshake), and
// hands the others to grpc-js (Server.createConnectionInjector), which runs
// TLS, HTTP/2 and the services on them as on a port it bound itself.
//
// Why here and not only at the edge: the memory an unauthenticated caller
// can hold grows with its connections (each may hold maxConcurrentStreams
// streams waiting for their requests: docs/threat-model.md, "Connection-level
// abuse"); the caps bound it at maxConnections × that, whatever is in front.
import net from "node:net";
import type * as grpc from "@grpc/grpc-js";

export type ConnectionRefusal = "total" | "address";

/**
 * Open connections by source address. Invariant: `total` is the sum of the
 * per-address counts, and an address with none has no entry.
 */
export class ConnectionCounts {
  private readonly byAddress = new Map<string, number>();
  private count = 0;

  constructor(private readonly maxTotal: number, private readonly maxPerAddress: number) {}

  get total(): number {
    return this.count;
  }

  /** Counts a new connection from `address`, or says which cap it would pass (then nothing is counted). */
  admit(address: string): ConnectionRefusal | null {
    const mine = this.byAddress.get(address) ?? 0;
    if (this.count >= this.maxTotal) return "total";
    if (mine >= this.maxPerAddress) return "address";
    this.byAddress.set(address, mine + 1);
    this.count++;
    return null;
  }

  /** Uncounts a connection admit() counted. */
  release(address: string): void {
    const mine = this.byAddress.get(address);
    if (mine === undefined || this.count === 0) throw new Error(`connection-gate: release of ${address}, which holds no connection`);
    if (mine === 1) this.byAddress.delete(address);
    else this.byAddress.set(address, mine - 1);
    this.count--;
  }
}

export interface ConnectionGateOptions {
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  /** A connection closed at accept; must not throw. */
  readonly onRefused: (reason: ConnectionRefusal, address: string) => void;
  /** The open count changed; must not throw. */
  readonly onCount?: (open: number) => void;
  /** An accept that failed (EMFILE, ENOBUFS, …): the listener goes on accepting; must not throw. */
  readonly onAcceptError?: (err: Error) => void;
}

/** A TCP listener in front of a grpc-js Server: counts connections and hands the admitted ones to grpc-js. */
export class ConnectionGate {
  private readonly counts: ConnectionCounts;
  private readonly listener: net.Server;
  private readonly injector: grpc.ConnectionInjector;

  constructor(server: grpc.Server, credentials: grpc.ServerCredentials, private readonly o: ConnectionGateOptions) {
    this.counts = new ConnectionCounts(o.maxConnections, o.maxConnectionsPerAddress);
    this.injector = server.createConnectionInjector(credentials);
    this.listener = net.createServer((socket) => this.accept(socket));
    // An accept error is emitted as 'error' on the listener: without a listener of its own it would end the process.
    this.listener.on("error", (err) => { if (this.listener.listening) o.onAcceptError?.(err); });
  }

  get open(): number {
    return this.counts.total;
  }

  /** Listens on `address` (host:port; port 0 picks one); resolves with the bound host:port. */
  listen(address: string): Promise<string> {
    const cut = address.lastIndexOf(":");
    const host = address.slice(0, cut).replace(/^\[(.*)\]$/, "$1");
    return new Promise((resolve, reject) => {
      this.listener.once("error", reject);
      this.listener.listen({ host, port: Number(address.slice(cut + 1)) }, () => {
        this.listener.off("error", reject);
        resolve(`${address.slice(0, cut)}:${(this.listener.address() as net.AddressInfo).port}`);
      });
    });
  }

  /**
   * Stops accepting. The open connections are grpc-js's to close
   * (Server.tryShutdown / forceShutdown); the listener's own close
   * completes only after them, so it is not awaited here.
   */
  close(): void {
    this.listener.close();
  }

  private accept(socket: net.Socket): void {
    const address = sourceAddress(socket);
    const refused = this.counts.admit(address);
    if (refused !== null) {
      socket.on("error", () => { /* a refused connection's errors are of no interest */ });
      socket.destroy();
      this.o.onRefused(refused, address);
      return;
    }
    socket.once("close", () => {
      this.counts.release(address);
      this.o.onCount?.(this.counts.total);
    });
    this.o.onCount?.(this.counts.total);
    this.injector.injectConnection(socket);
  }
}

/** The peer's address, with an IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 one it is. */
function sourceAddress(socket: net.Socket): string {
  const a = socket.remoteAddress ?? "unknown";
  return a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
}
