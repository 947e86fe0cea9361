// grpc.health.v1.Health (Check, Watch, List) for a fixed set of service
// names, in place of grpc-health-check's HealthImplementation, which keeps
// a watcher set for every name a Watch ever named (an empty Set stays keyed
// by the caller's string after the stream ends): on the client port, without
// a token, distinct long names grew the heap without bound
// (docs/threat-model.md "Connection-level abuse (HTTP/2)").
//
// Contract:
// - The names served are fixed at construction; setStatus changes a status,
//   never the set (and throws for a name not served).
// - A requested name longer than MAX_SERVICE_NAME_BYTES (UTF-8) is refused
//   with INVALID_ARGUMENT, before anything is kept.
// - Check of a name not served: NOT_FOUND. Watch of a name not served: one
//   SERVICE_UNKNOWN and the stream stays open until the caller ends it (the
//   gRPC health protocol), with nothing kept for it here: the set of names is
//   fixed, so its status can never change.
// - Per served name, the watchers are exactly the open Watch streams of that
//   name; a stream leaves its set when it is cancelled (or closed), and an
//   empty set is deleted. So what this service keeps is bounded by the
//   number of open streams, which the ports cap (connection caps ×
//   grpc.max_concurrent_streams).
// - A watcher whose caller does not read gets at most one status queued
//   beyond the stream's buffer (the latest): a flapping status does not fill
//   the memory of a stream that is never read.
import { status as grpcStatus, type Server, type ServerUnaryCall, type ServerWritableStream, type ServiceDefinition, type sendUnaryData } from "@grpc/grpc-js";
import { service as healthDefinition, type ServingStatus } from "grpc-health-check";

/** Longest service name (UTF-8 bytes) a Check or Watch may name; longer ones are INVALID_ARGUMENT. */
export const MAX_SERVICE_NAME_BYTES = 256;

/** What Watch may send: a status, or SERVICE_UNKNOWN for a name not served. */
type WatchStatus = ServingStatus | "SERVICE_UNKNOWN";

interface HealthRequest {
  readonly service: string;
}
interface HealthResponse {
  readonly status: WatchStatus;
}
type Watcher = (status: ServingStatus) => void;

/** Why `name` is refused outright (INVALID_ARGUMENT), or null. */
export function serviceNameRefusal(name: string): string | null {
  const bytes = Buffer.byteLength(name, "utf8");
  return bytes > MAX_SERVICE_NAME_BYTES ? `service name of ${bytes} bytes: at most ${MAX_SERVICE_NAME_BYTES}` : null;
}

export class HealthService {
  private readonly statuses: Map<string, ServingStatus>;
  private readonly watchers = new Map<string, Set<Watcher>>();

  /** Serves `names`, each with `initial` status. */
  constructor(names: readonly string[], initial: ServingStatus) {
    this.statuses = new Map(names.map((n) => [n, initial]));
  }

  /** Sets `name`'s status and tells its open Watch streams. Throws for a name not served. */
  setStatus(name: string, status: ServingStatus): void {
    if (!this.statuses.has(name)) throw new Error(`health: ${JSON.stringify(name)} is not a served service name`);
    this.statuses.set(name, status);
    for (const w of this.watchers.get(name) ?? []) w(status);
  }

  /** Open Watch streams of served names, and how many names have any (for tests and metrics). */
  watching(): { readonly streams: number; readonly names: number } {
    let streams = 0;
    for (const set of this.watchers.values()) streams += set.size;
    return { streams, names: this.watchers.size };
  }

  /** Adds grpc.health.v1.Health to `server`. */
  addToServer(server: Server): void {
    server.addService(healthDefinition as unknown as ServiceDefinition, {
      check: (call: ServerUnaryCall<HealthRequest, HealthResponse>, done: sendUnaryData<HealthResponse>) => this.check(call.request.service, done),
      watch: (call: ServerWritableStream<HealthRequest, HealthResponse>) => this.watch(call),
      list: (_call: unknown, done: sendUnaryData<{ statuses: Record<string, HealthResponse> }>) => done(null, { statuses: this.list() }),
    });
  }

  private check(name: string, done: sendUnaryData<HealthResponse>): void {
    const refusal = serviceNameRefusal(name);
    if (refusal !== null) return done({ code: grpcStatus.INVALID_ARGUMENT, details: refusal });
    const status = this.statuses.get(name);
    if (status === undefined) return done({ code: grpcStatus.NOT_FOUND, details: `health status unknown for service ${JSON.stringify(name)}` });
    done(null, { status });
  }

  private watch(call: ServerWritableStream<HealthRequest, HealthResponse>): void {
    const name = call.request.service;
    const refusal = serviceNameRefusal(name);
    if (refusal !== null) {
      call.emit("error", { code: grpcStatus.INVALID_ARGUMENT, details: refusal });
      return;
    }
    const status = this.statuses.get(name);
    if (status === undefined) {
      call.write({ status: "SERVICE_UNKNOWN" });
      return;
    }
    // A call cancelled before its handler ran gets no 'cancelled' event: it must not enter a set.
    if (call.cancelled) return;
    const watcher = latestOnly(call);
    this.add(name, watcher);
    const remove = () => this.remove(name, watcher);
    call.once("cancelled", remove);
    call.once("close", remove);
    watcher(status);
  }

  private list(): Record<string, HealthResponse> {
    return Object.fromEntries([...this.statuses].map(([n, status]) => [n, { status }]));
  }

  private add(name: string, w: Watcher): void {
    const set = this.watchers.get(name);
    if (set === undefined) this.watchers.set(name, new Set([w]));
    else set.add(w);
  }

  /** Removes `w` (idempotent); deletes the name's set once it is empty. */
  private remove(name: string, w: Watcher): void {
    const set = this.watchers.get(name);
    if (set === undefined) return;
    set.delete(w);
    if (set.size === 0) this.watchers.delete(name);
  }
}

/**
 * A watcher writing to `call`: while the stream's buffer is full
 * (writableNeedDrain), only the latest status waits, written at 'drain'.
 */
function latestOnly(call: ServerWritableStream<HealthRequest, HealthResponse>): Watcher {
  let pending: ServingStatus | null = null;
  call.on("drain", () => {
    if (pending === null) return;
    const status = pending;
    pending = null;
    call.write({ status });
  });
  return (status) => {
    if (call.writableNeedDrain) pending = status;
    else call.write({ status });
  };
}
