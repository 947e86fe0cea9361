// A port's connection caps. The port is a plain TCP listener that counts
// open connections, in all and per source address, closes one over either
// cap at accept (before TLS: it costs the node no handshake), and hands the
// others to grpc-js (Server.createConnectionInjector), which runs TLS,
// HTTP/2 and the services on them as on a port it bound itself. Every port
// of a node stands behind one: the client port (limits.maxConnections*),
// the admin and peer ports (fixed caps: docs/threat-model.md).
//
// Why at the node and not only at the edge: each connection holds a file
// descriptor (and a place under the caps) until its TLS handshake ends or
// times out (TLS_HANDSHAKE_TIMEOUT_MS here, not Node's two minutes); the
// memory a caller can hold grows with its connections too (each may hold
// maxConcurrentStreams streams waiting for their requests:
// docs/threat-model.md, "Connection-level abuse"). The caps bound both,
// whatever is in front.
import net from "node:net";
import * as grpc from "@grpc/grpc-js";

/** The cap a refused connection would have passed: open connections in all, from its address, or new ones per second from its address. */
export type ConnectionRefusal = "total" | "address" | "rate";

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

/**
 * New connections per source address: a token bucket per address holding up
 * to `burst` tokens, refilled at `perSec`. Each TLS handshake costs the node
 * ~1.3 ms of CPU, so a caller who closes and reopens its connections in a
 * loop would otherwise take a core from one address; this bounds it at
 * `perSec` handshakes. Memory: a full bucket is the same as none, so buckets
 * found full are dropped whenever the map has doubled since the last sweep;
 * it holds the addresses that connected in the last `burst / perSec` seconds,
 * and as many again at most.
 */
export class ConnectRate {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private sweepAt = 1024;

  constructor(private readonly perSec: number, private readonly burst: number, private readonly now: () => number = () => performance.now()) {
    if (!(perSec > 0) || !(burst >= 1)) throw new RangeError(`connect rate ${perSec}/s with a burst of ${burst}: both must be positive`);
  }

  /** Takes a token of `address`'s bucket; false when it has none (nothing is taken). */
  take(address: string): boolean {
    const t = this.now();
    const b = this.buckets.get(address) ?? { tokens: this.burst, at: t };
    b.tokens = this.level(b, t);
    b.at = t;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    this.buckets.set(address, b);
    if (this.buckets.size >= this.sweepAt) this.sweep(t);
    return true;
  }

  /** Addresses with a bucket (for tests). */
  get tracked(): number {
    return this.buckets.size;
  }

  /** The tokens `b` holds at time `t`: what it held at `b.at`, refilled since, never past the burst. */
  private level(b: { tokens: number; at: number }, t: number): number {
    return Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.perSec);
  }

  private sweep(t: number): void {
    for (const [address, b] of this.buckets) {
      if (this.level(b, t) >= this.burst) this.buckets.delete(address);
    }
    this.sweepAt = Math.max(1024, 2 * this.buckets.size);
  }
}

/** A port's caps: open connections in all and from one address, and new ones per second from one address (its burst: maxConnectionsPerAddress). */
export interface PortCaps {
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  readonly connectsPerSecPerAddress: number;
}

/**
 * How long an admitted connection may take to finish its TLS handshake
 * before the node closes it (Node's default is two minutes). Until then it
 * holds a descriptor and a place under the caps, so an address that opens
 * connections and never starts TLS would keep its per-address places, and
 * many addresses the total cap, for the whole timeout. A handshake takes a
 * few round trips: 10 s leaves room for a slow mobile link.
 */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface ConnectionGateOptions extends PortCaps {
  /** TLS_HANDSHAKE_TIMEOUT_MS unless given (tests shorten it). Ignored with insecure credentials. */
  readonly handshakeTimeoutMs?: number;
  /** A connection closed at accept; must not throw. */
  readonly onRefused: (reason: ConnectionRefusal, address: string) => void;
  /** The open count changed; must not throw. */
  readonly onCount?: (open: number) => void;
  /** An accept that failed (EMFILE, ENOBUFS, …): the listener goes on accepting; must not throw. */
  readonly onAcceptError?: (err: Error) => void;
}

/**
 * A TCP listener in front of a grpc-js Server: counts connections and hands
 * the admitted ones to grpc-js. It may listen before it serves (a node binds
 * its ports before it starts Raft, so a port in use fails the start before
 * the node takes part in elections): until serve(), every connection is
 * closed at accept, as a port not yet open would refuse it.
 */
export class ConnectionGate {
  private readonly counts: ConnectionCounts;
  private readonly rate: ConnectRate;
  private readonly listener: net.Server;
  private injector: grpc.ConnectionInjector | null = null;

  constructor(private readonly o: ConnectionGateOptions) {
    this.counts = new ConnectionCounts(o.maxConnections, o.maxConnectionsPerAddress);
    this.rate = new ConnectRate(o.connectsPerSecPerAddress, o.maxConnectionsPerAddress);
    // noDelay as Node's own HTTP/2 servers set it (grpc-js's bound ports): a response is not held back for the previous one's ACK.
    this.listener = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    // An accept error is emitted as 'error' on the listener: without a listener of its own it would end the process.
    this.listener.on("error", (err) => { if (this.listener.listening) o.onAcceptError?.(err); });
  }

  /** From now on admitted connections go to `server`, with `credentials` (TLS or insecure). Once only. */
  serve(server: grpc.Server, credentials: grpc.ServerCredentials): void {
    if (this.injector !== null) throw new Error("ConnectionGate.serve called twice");
    this.injector = server.createConnectionInjector(withHandshakeTimeout(credentials, this.o.handshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS));
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
    if (this.injector === null) return closeAtAccept(socket);
    const address = sourceAddress(socket);
    const refused = this.rate.take(address) ? this.counts.admit(address) : "rate";
    if (refused !== null) {
      closeAtAccept(socket);
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

function closeAtAccept(socket: net.Socket): void {
  socket.on("error", () => { /* a refused connection's errors are of no interest */ });
  socket.destroy();
}

/**
 * `base` with a TLS handshake timeout. grpc-js's createSsl takes no server
 * options, but a ServerCredentials is built from the http2 secure server's
 * options (which include handshakeTimeout) and the secure context's; this
 * copies both from `base` and adds the timeout. Insecure credentials are
 * returned as they are. The copy does not follow a later
 * updateSecureContextOptions of `base` (bkv loads its TLS material at start
 * only).
 */
function withHandshakeTimeout(base: grpc.ServerCredentials, handshakeTimeout: number): grpc.ServerCredentials {
  const server = base._getConstructorOptions();
  if (server === null) return base;
  if (!(handshakeTimeout > 0)) throw new RangeError(`TLS handshake timeout ${handshakeTimeout} ms: must be positive`);
  const context = base._getSecureContextOptions() ?? undefined;
  return new TimedServerCredentials({ ...server, handshakeTimeout }, context);
}

class TimedServerCredentials extends grpc.ServerCredentials {
  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/** The key the peer's connections are counted under (addressKey of its address). */
function sourceAddress(socket: net.Socket): string {
  return addressKey(socket.remoteAddress ?? "unknown");
}

/**
 * The key a caller's limits are counted under: an IPv4 address as it is
 * (an IPv4-mapped IPv6 one, ::ffff:a.b.c.d, as the IPv4 one it is), an IPv6
 * address as its /64 prefix ("2001:db8:0:1::/64"), anything else as given.
 * One IPv6 subscriber usually holds a /64 or more, so counting each of its
 * addresses apart would give it 2^64 budgets. The connection caps, the
 * connect rate and the client port's admission buckets all use it.
 */
export function addressKey(address: string): string {
  const a = address.replace(/%.*$/, ""); // a zone index (fe80::1%eth0) names an interface, not a caller
  if (a.toLowerCase().startsWith("::ffff:") && net.isIPv4(a.slice(7))) return a.slice(7);
  if (!net.isIPv6(a)) return address;
  return `${ipv6Groups(a).slice(0, 4).map((g) => g.toString(16)).join(":")}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address: "::" expanded, a dotted IPv4 tail read as two groups. */
function ipv6Groups(a: string): number[] {
  const groups = (part: string): number[] => (part === "" ? [] : part.split(":").flatMap((g) => (g.includes(".") ? dottedGroups(g) : [parseInt(g, 16)])));
  const cut = a.indexOf("::");
  if (cut < 0) return groups(a);
  const head = groups(a.slice(0, cut));
  const tail = groups(a.slice(cut + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

function dottedGroups(v4: string): number[] {
  const [a = 0, b = 0, c = 0, d = 0] = v4.split(".").map(Number);
  return [(a << 8) | b, (c << 8) | d];
}
