// A fault-injecting TCP proxy for one directed peer link (node a dials node b).
//
// The proxy listens on 127.0.0.1 and forwards every accepted connection to the
// real peer address. It works on bytes only: TLS passes through untouched (the
// peer checks the certificate name, not the address). "forward" is the
// direction dialer → target (a's bytes to b), "backward" is target → dialer.
//
// Contract of each fault:
// - dropNew: new connections are accepted then destroyed at once (connection refused
//   would need the port closed, which would let the OS hand it to someone else).
// - blackhole(direction): bytes in that direction are read and discarded, never
//   buffered: healing does not replay them. Applies to open and new connections.
// - latency N: every chunk is delivered N ms after it arrived, order preserved.
// - resetAll: every open connection is reset (RST) on both sides.
import net from "node:net";

export type Direction = "forward" | "backward";

export interface LinkFaults {
  dropNew: boolean;
  blocked: Record<Direction, boolean>;
  latencyMs: number;
}

export function passFaults(): LinkFaults {
  return { dropNew: false, blocked: { forward: false, backward: false }, latencyMs: 0 };
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

export interface LinkProxyOptions {
  /** The real peer address. */
  targetHost: string;
  targetPort: number;
  /** 0 (default) picks a free port. */
  listenPort?: number;
  /** A label for diagnostics, e.g. "1->2". */
  name?: string;
}

export class LinkProxy {
  readonly name: string;
  private readonly server: net.Server;
  private readonly pairs = new Set<Pair>();
  private faults: LinkFaults = passFaults();
  private listenPort = 0;
  /** Connections accepted since start (tests and reports read it). */
  accepted = 0;

  constructor(private readonly opts: LinkProxyOptions) {
    this.name = opts.name ?? `->${opts.targetHost}:${opts.targetPort}`;
    this.server = net.createServer({ pauseOnConnect: true }, (s) => this.onConnection(s));
  }

  /** Starts listening; resolves with the port. */
  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.listenPort ?? 0, "127.0.0.1", () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const addr = this.server.address();
    if (addr === null || typeof addr === "string") throw new Error(`proxy ${this.name}: no TCP address`);
    this.listenPort = addr.port;
    return this.listenPort;
  }

  get port(): number {
    return this.listenPort;
  }

  get openConnections(): number {
    return this.pairs.size;
  }

  currentFaults(): LinkFaults {
    return { ...this.faults, blocked: { ...this.faults.blocked } };
  }

  setFaults(f: LinkFaults): void {
    if (!Number.isFinite(f.latencyMs) || f.latencyMs < 0) throw new RangeError(`proxy ${this.name}: latency must be >= 0, got ${f.latencyMs}`);
    this.faults = { ...f, blocked: { ...f.blocked } };
  }

  dropNewConnections(on = true): void {
    this.faults.dropNew = on;
  }

  blackhole(direction: Direction | "both" = "both"): void {
    if (direction === "both" || direction === "forward") this.faults.blocked.forward = true;
    if (direction === "both" || direction === "backward") this.faults.blocked.backward = true;
  }

  setLatency(ms: number): void {
    this.setFaults({ ...this.faults, latencyMs: ms });
  }

  /** Back to a transparent link. Open connections stay open. */
  heal(): void {
    this.faults = passFaults();
  }

  /** Resets every open connection (both sides get an RST). */
  resetAll(): void {
    for (const p of [...this.pairs]) this.destroyPair(p, true);
  }

  async close(): Promise<void> {
    this.resetAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(client: net.Socket): void {
    this.accepted += 1;
    if (this.faults.dropNew) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: this.opts.targetHost, port: this.opts.targetPort });
    const pair: Pair = { client, upstream };
    this.pairs.add(pair);
    const end = (): void => this.destroyPair(pair, false);
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    upstream.once("connect", () => {
      this.pipe(client, upstream, "forward");
      this.pipe(upstream, client, "backward");
      client.resume();
    });
  }

  /** Copies src to dst chunk by chunk, applying the current faults of `dir`. */
  private pipe(src: net.Socket, dst: net.Socket, dir: Direction): void {
    let releaseAt = 0;
    src.on("data", (chunk: Buffer) => {
      if (this.faults.blocked[dir]) return;
      const delay = this.faults.latencyMs;
      if (delay === 0 && releaseAt <= Date.now()) {
        writeWithBackpressure(src, dst, chunk);
        return;
      }
      // Order is preserved: a chunk never leaves before the one before it.
      releaseAt = Math.max(releaseAt, Date.now() + delay);
      setTimeout(() => {
        if (!dst.destroyed) dst.write(chunk);
      }, releaseAt - Date.now());
    });
    src.on("end", () => {
      if (!dst.destroyed) dst.end();
    });
  }

  private destroyPair(p: Pair, reset: boolean): void {
    if (!this.pairs.delete(p)) return;
    for (const s of [p.client, p.upstream]) {
      if (s.destroyed) continue;
      if (reset && s.readyState === "open") s.resetAndDestroy();
      else s.destroy();
    }
  }
}

function writeWithBackpressure(src: net.Socket, dst: net.Socket, chunk: Buffer): void {
  if (dst.destroyed) return;
  if (!dst.write(chunk)) {
    src.pause();
    dst.once("drain", () => src.resume());
  }
}
