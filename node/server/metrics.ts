// Prometheus metrics (prom-client) and the /metrics, /healthz, /readyz HTTP
// endpoint. Gauges of Raft state are read from the loop at scrape time.
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { WorkerMemory } from "../hsm/index.js";
import type { Storage } from "../raft/index.js";
import type { VaultStoreStats } from "../storage/index.js";
import type { TransportStats } from "../transport/index.js";

export interface RaftView {
  term(): number;
  commit(): number;
  applied(): number;
  leader(): number;
  isLeader(): boolean;
  snapshotIndex(): number;
  /** O(1) (VaultStateMachine.stats keeps its counters): read at every scrape. */
  vaultStats(): { records: number; locked: number };
  /** The latest leader time the vault applied (unix ms; 0 before the first stamped entry). */
  vaultTime(): number;
  /** The vault store's size and page use (null before it is open). */
  storeStats(): Promise<VaultStoreStats | null>;
  /** Entries of the Raft log held in memory (not compacted yet) and their data bytes: O(entries), read at scrape. */
  logInMemory(): { entries: number; bytes: number };
}

/** What the metrics read of the node's HSM worker pool (HsmWorkerPool). */
export interface HsmPoolView {
  readonly stats: { readonly operations: number; readonly recycles: number; readonly lastRestartMs: number };
  memory(): Promise<WorkerMemory>;
}

export class Metrics {
  readonly registry = new Registry();
  readonly proposals = new Counter({ name: "bkv_proposals_total", help: "Vault commands proposed by this node", labelNames: ["kind"], registers: [this.registry] });
  readonly requests = new Counter({ name: "bkv_grpc_requests_total", help: "Client API calls by method and status", labelNames: ["method", "code"], registers: [this.registry] });
  readonly requestSeconds = new Histogram({
    name: "bkv_grpc_request_seconds", help: "Client API call latency", labelNames: ["method"], registers: [this.registry],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  });
  readonly applySeconds = new Histogram({
    name: "bkv_apply_seconds", help: "Time to apply one Ready's committed entries", registers: [this.registry],
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
  });
  readonly earlyEnds = new Counter({
    name: "bkv_grpc_early_ends_total", labelNames: ["port", "method", "stage"], registers: [this.registry],
    help: "Calls that ended before their handler got the request (stage before_request: refused inside grpc-js for its size, compression or headers, or the caller left; unary_framing: no request message or two)",
  });
  readonly connections = new Gauge({ name: "bkv_connections", labelNames: ["port"], help: "Open connections by port (client, admin, peer); each port caps them", registers: [this.registry] });
  readonly connectionsRefused = new Counter({
    name: "bkv_connections_refused_total", labelNames: ["port", "reason"], registers: [this.registry],
    help: "Connections closed at accept, by port and by the cap they would pass (total or per address: client port limits.maxConnections*, admin and peer ports fixed)",
  });
  readonly appliedEntries = new Counter({ name: "bkv_applied_entries_total", help: "Committed entries applied", registers: [this.registry] });
  readonly adminRequests = new Counter({ name: "bkv_admin_requests_total", help: "Admin API calls by method and status", labelNames: ["method", "code"], registers: [this.registry] });
  readonly adminRequestSeconds = new Histogram({
    name: "bkv_admin_request_seconds", help: "Admin API call latency", labelNames: ["method"], registers: [this.registry],
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30],
  });
  readonly snapshotsRefused = new Counter({
    name: "bkv_snapshots_refused_total", help: "Snapshot messages refused before install, by reason (index, rollback, disagreement, unattested)", labelNames: ["reason"], registers: [this.registry],
  });
  readonly snapshotDownloadsAbandoned = new Counter({
    name: "bkv_snapshot_downloads_abandoned_total", labelNames: ["reason"], registers: [this.registry],
    help: "Snapshot downloads this node ended before their last chunk, by reason (idle, slow, size, disk: a bound of snapshotDownload passed; preempted: a newer term's snapshot message)",
  });
  readonly evaluationsRefused = new Counter({
    name: "bkv_evaluations_refused_total", registers: [this.registry], labelNames: ["reason"],
    help: "Evaluations this node refused although its state holds the attempt, by reason (ledger: it already evaluated the record's guess limit in this epoch; its state was taken back)",
  });
  readonly clockOffset = new Gauge({
    name: "bkv_clock_offset_seconds", registers: [this.registry],
    help: "The cluster's time minus this node's clock, as this node stamps entries and checks tokens (0 unless a majority of the members' clocks disagree with this node's by 2 s or more)",
  });
  readonly auditGaps = new Counter({
    name: "bkv_audit_gaps_total", registers: [this.registry],
    help: "Losses of audit log lines found at this start: the file's chain did not reach the head the vault store recorded (a gap line in the file records each)",
  });
  readonly hsmUp = new Gauge({ name: "bkv_hsm_up", help: "1 while the last periodic HSM probe succeeded", registers: [this.registry] });
  readonly hsmProbeFailures = new Counter({ name: "bkv_hsm_probe_failures_total", help: "Periodic HSM probes that failed or timed out", registers: [this.registry] });
  readonly hsmEvaluation = new Histogram({
    name: "bkv_hsm_evaluation_seconds", help: "HSM unwrap + evaluation + signature of one Evaluate", registers: [this.registry],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
  });

  constructor(view: () => RaftView | null, labels: Record<string, string>) {
    this.registry.setDefaultLabels(labels);
    collectDefaultMetrics({ register: this.registry });
    const gauge = (name: string, help: string, read: (v: RaftView) => number) => new Gauge({
      name, help, registers: [this.registry],
      collect() {
        const v = view();
        if (v !== null) this.set(read(v));
      },
    });
    gauge("bkv_raft_term", "Current Raft term", (v) => v.term());
    gauge("bkv_raft_commit_index", "Raft commit index", (v) => v.commit());
    gauge("bkv_raft_applied_index", "Index applied to the vault", (v) => v.applied());
    gauge("bkv_raft_leader_id", "Known leader id (0: none)", (v) => v.leader());
    gauge("bkv_raft_is_leader", "1 on the leader", (v) => (v.isLeader() ? 1 : 0));
    gauge("bkv_raft_snapshot_index", "Index of the latest snapshot", (v) => v.snapshotIndex());
    gauge("bkv_raft_apply_lag", "Committed entries not applied yet (commit - applied)", (v) => v.commit() - v.applied());
    gauge("bkv_raft_log_entries", "Raft log entries held in memory (compacted after each snapshot)", (v) => v.logInMemory().entries);
    gauge("bkv_raft_log_bytes", "Data bytes of the Raft log entries held in memory", (v) => v.logInMemory().bytes);
    gauge("bkv_vault_records", "Records in this node's applied state", (v) => v.vaultStats().records);
    gauge("bkv_vault_locked_records", "Records locked at their guess limit (shares destroyed)", (v) => v.vaultStats().locked);
    gauge("bkv_vault_time_ahead_seconds",
      "The applied state's time (the latest leader time stamped on an entry) minus this node's clock; above auth clockSkewSec, tokens fail on apply (a leader's clock ran ahead)",
      (v) => (v.vaultTime() === 0 ? 0 : (v.vaultTime() - Date.now()) / 1000));
    const storeGauge = (name: string, help: string, read: (s: VaultStoreStats) => number) => new Gauge({
      name, help, registers: [this.registry],
      async collect() {
        const s = await view()?.storeStats();
        if (s !== undefined && s !== null) this.set(read(s));
      },
    });
    storeGauge("bkv_store_file_bytes", "Size of the vault store's file on disk", (s) => s.fileBytes);
    storeGauge("bkv_store_used_bytes", "Pages of the vault store in use (what the page cache holds when it is hot)", (s) => s.usedBytes);
    storeGauge("bkv_store_map_bytes", "Address space of the vault store's memory map", (s) => s.mapBytes);
    storeGauge("bkv_store_entries", "Pairs in the vault store", (s) => s.entries);
    storeGauge("bkv_store_pinned_views", "Read views of the vault store held for snapshots", (s) => s.views);
    storeGauge("bkv_store_readers", "LMDB read transactions open in the vault store (of 126; all taken stops the node)", (s) => s.readers);
    const memGauge = (name: string, help: string, field: string) => new Gauge({
      name, help, registers: [this.registry],
      collect() {
        const kib = procStatusKib(field);
        if (kib !== null) this.set(kib * 1024);
      },
    });
    // VmRSS (process_resident_memory_bytes) counts the store's mapped file pages the process touched:
    // page cache the kernel reclaims under pressure. The anonymous part is what the node itself holds.
    memGauge("bkv_process_rss_anon_bytes", "Resident anonymous memory (heap, stacks, native allocations): RssAnon of /proc/self/status", "RssAnon");
    memGauge("bkv_process_rss_file_bytes", "Resident file-backed pages (mostly the vault store's memory map, i.e. page cache): RssFile of /proc/self/status", "RssFile");
    new Gauge({
      name: "bkv_process_array_buffers_bytes", help: "ArrayBuffer and Buffer memory of the main thread (part of nodejs_external_memory_bytes)", registers: [this.registry],
      collect() { this.set(process.memoryUsage().arrayBuffers); },
    });
  }

  /** Exports the peer transport's counters (node/transport/stats.ts): Raft messages and frames in and out, drops. */
  watchTransport(stats: Readonly<TransportStats>): void {
    const counter = (name: string, help: string, read: () => number) => {
      let last = 0;
      return new Counter({
        name, help, registers: [this.registry],
        collect() {
          const v = read();
          this.inc(v - last);
          last = v;
        },
      });
    };
    counter("bkv_peer_messages_sent_total", "Raft messages written to peer streams", () => stats.messagesSent);
    counter("bkv_peer_writes_total", "Frames (message batches) written to peer streams", () => stats.writes);
    counter("bkv_peer_messages_received_total", "Raft messages received from peers and handed to Raft", () => stats.messagesReceived);
    counter("bkv_peer_messages_dropped_total", "Raft messages dropped before sending (peer down, queue full, unknown peer)", () => stats.messagesDropped);
  }

  /** Exports the HSM worker pool's module restarts and its worker threads' memory (each thread is an isolate of its own). */
  watchHsm(pool: HsmPoolView): void {
    const gauge = (name: string, help: string, read: () => number) => new Gauge({ name, help, registers: [this.registry], collect() { this.set(read()); } });
    gauge("bkv_hsm_module_restarts", "Times the PKCS#11 module was finalized and initialized again (every recycleAfter operations)", () => pool.stats.recycles);
    gauge("bkv_hsm_operations_since_restart", "HSM operations since the module was last (re)initialized", () => pool.stats.operations);
    gauge("bkv_hsm_last_restart_seconds", "How long calls waited for the last module restart (drain included)", () => pool.stats.lastRestartMs / 1000);
    let reading: Promise<WorkerMemory> | null = null;
    const memGauge = (name: string, help: string, field: keyof WorkerMemory) => new Gauge({
      name, help, registers: [this.registry],
      async collect() {
        reading ??= pool.memory().finally(() => { reading = null; });
        this.set((await reading)[field]);
      },
    });
    memGauge("bkv_hsm_worker_heap_used_bytes", "V8 heap in use in the HSM worker threads together", "heapUsed");
    memGauge("bkv_hsm_worker_heap_total_bytes", "V8 heap reserved by the HSM worker threads together", "heapTotal");
    memGauge("bkv_hsm_worker_external_bytes", "External (off-heap) memory of the HSM worker threads together", "external");
  }

  request(method: string, code: string, ms: number): void {
    this.requests.inc({ method, code });
    this.requestSeconds.observe({ method }, ms / 1000);
  }

  adminRequest(method: string, code: string, ms: number): void {
    this.adminRequests.inc({ method, code });
    this.adminRequestSeconds.observe({ method }, ms / 1000);
  }

  hsmProbed(ok: boolean): void {
    this.hsmUp.set(ok ? 1 : 0);
    if (!ok) this.hsmProbeFailures.inc();
  }
}

/** The Raft log entries `storage` holds in memory, and their data bytes. */
export function logInMemory(storage: Pick<Storage, "firstIndex" | "lastIndex" | "entries">): { entries: number; bytes: number } {
  const lo = storage.firstIndex();
  const hi = storage.lastIndex() + 1;
  if (hi <= lo) return { entries: 0, bytes: 0 };
  let bytes = 0;
  for (const e of storage.entries(lo, hi, Infinity)) bytes += e.data.byteLength;
  return { entries: hi - lo, bytes };
}

/** A "kB" field of /proc/self/status, null where there is none (not Linux). */
export function procStatusKib(field: string, status = readProcStatus()): number | null {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
  return m === null ? null : Number(m[1]);
}

function readProcStatus(): string {
  try {
    return readFileSync("/proc/self/status", "latin1");
  } catch {
    return "";
  }
}

export interface MetricsPortOptions {
  readonly metrics: Metrics;
  /** Null while the node's gRPC health is SERVING, else why not. */
  readonly notReady: () => string | null;
  /** Whether the node's start ended: until then every path answers 503 "starting". */
  readonly started: () => boolean;
  /** When not empty, a further line of /readyz's body whatever its status (e.g. client authentication off). */
  readonly notice: string;
}

/**
 * Serves /metrics, /healthz (process alive) and /readyz: 200 while
 * `notReady()` is null, else 503 with the reason. The port is bound at the
 * very start of a node's start: until the start ends, every path answers
 * 503 "starting" (a start that hangs fails a startup probe, as a port not
 * yet open did).
 */
export function serveMetrics(listen: string, o: MetricsPortOptions): Promise<Server> {
  const server = createServer((req, res) => {
    if (!o.started()) {
      res.writeHead(503); res.end("starting\n");
    } else if (req.url === "/metrics") {
      o.metrics.registry.metrics().then(
        (body) => { res.writeHead(200, { "content-type": o.metrics.registry.contentType }); res.end(body); },
        () => { res.writeHead(500); res.end("metrics failed\n"); },
      );
    } else if (req.url === "/healthz") {
      res.writeHead(200); res.end("ok\n");
    } else if (req.url === "/readyz") {
      const why = o.notReady();
      res.writeHead(why === null ? 200 : 503); res.end(`${why === null ? "ready" : `not ready: ${why}`}\n${o.notice === "" ? "" : `warning: ${o.notice}\n`}`);
    } else {
      res.writeHead(404); res.end("not found\n");
    }
  });
  const i = listen.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(listen.slice(i + 1)), listen.slice(0, i), () => resolve(server));
  });
}
