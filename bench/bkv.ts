// The bkv side of the cluster benchmarks: a local 3-node cluster of real
// bkv-node processes (testkit/cluster.ts), users to spend attempts on (a few
// per user, confirmed between rows), and committed BeginRecovery calls to
// the leader.
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import type { ClusterDescriptor } from "../client/sdk/index.js";
import { registerRequest } from "../client/sdk/records.js";
import { createRegistrationAsync, signConfirm } from "../proto/crypto/index.js";
import type { RegisterRequest } from "../proto/gen/bkv/v1/vault_pb.js";
import { LocalCluster, waitFor } from "../testkit/cluster.js";
import { RegistrationCloner } from "../testkit/clones.js";
import { distinctPoints, stopChild } from "./drive.js";
import { type SchedTimes, mainThreadSched, metricOf } from "./sample.js";

/** Client-side scrypt for the benchmarks' registrations (the nodes never see it). */
export const CHEAP_SCRYPT = { N: 1024, r: 8, p: 1 };

type Vault = ReturnType<LocalCluster["vault"]>;

/**
 * Register requests for distinct users `s<i>`, each a clone of one real
 * registration under another user id (testkit/clones.ts; no record is
 * written into a store directly): bench:scale's load.
 */
export function clonedRegistrations(d: ClusterDescriptor): (i: number) => RegisterRequest {
  const nodes = d.nodes.map((n) => ({ id: n.nodeId, agreementPublicKey: n.agreementPublicKey }));
  const cloner = new RegistrationCloner(d.clusterId, nodes, d.threshold);
  return (i) => registerRequest(cloner.registration(`s${i}`), new Uint8Array(randomBytes(16)));
}

export interface CloneLoad {
  /** Registrations in all (users s0 .. s{count-1}); without it, until `stopAt`. */
  readonly count?: number;
  /** performance.now() after which no registration starts. */
  readonly stopAt?: number;
  readonly inFlight: number;
  /**
   * Registrations started per second (each at its due time, never more than
   * `inFlight` at once); unset or 0: as fast as `inFlight` allows (a closed
   * loop, which holds the cluster at its limit).
   */
  readonly rate?: number;
  /** Called after each registration that applied. */
  readonly onRegistered?: () => void;
}

/**
 * Registers clonedRegistrations through the leader, `inFlight` at a time;
 * a failed call is sent again (the same request id: applied at most once)
 * to the leader found then, up to CLONE_RETRIES times, then thrown. Resolves
 * with how many were registered. The load of bench:scale, bench/catch-up
 * and bench/load-stalls.
 */
export async function registerClones(cluster: LocalCluster, o: CloneLoad): Promise<number> {
  const registration = clonedRegistrations(await cluster.descriptor());
  let leader = await cluster.leaderId();
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  const more = () => (o.count === undefined || next < o.count) && (o.stopAt === undefined || performance.now() < o.stopAt);
  const worker = async () => {
    while (more()) {
      const i = next++;
      if (o.rate) await sleepUntil(Math.min(t0 + (i * 1000) / o.rate, o.stopAt ?? Infinity));
      if (o.stopAt !== undefined && performance.now() >= o.stopAt) break; // a paced worker's turn came after the end
      const req = registration(i);
      for (let tries = 0; ; tries++) {
        try {
          await cluster.vault(leader).register(req, { deadline: new Date(Date.now() + 30_000) });
          break;
        } catch (err) {
          if (tries >= CLONE_RETRIES) throw err;
          leader = await cluster.leaderId().catch(() => leader);
        }
      }
      done++;
      o.onRegistered?.();
    }
  };
  await Promise.all(Array.from({ length: o.inFlight }, worker));
  return done;
}

const CLONE_RETRIES = 20;

function sleepUntil(t: number): Promise<void> {
  const ms = t - performance.now();
  return ms <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * One scrape of a node: its longest event-loop stall since the previous
 * scrape (nodejs_eventloop_lag_max_seconds: prom-client resets it at each
 * scrape; the longest interval between the 10 ms ticks of Node's delay
 * monitor, so a stall of B ms reads as B to B + 10), and what its main
 * thread did meanwhile: ms on a core, and ms runnable but waiting for one
 * (/proc/PID/schedstat; undefined on the first scrape of a process).
 */
export interface NodeScrape {
  readonly id: number;
  /** 0 for the scrapes made by the first round (they cover everything before it: a start-up, an earlier phase). */
  readonly round: number;
  /** Undefined when the node did not answer (starting, stopping). */
  readonly stallMs: number | undefined;
  readonly sched?: SchedTimes;
}

/**
 * Scrapes every node of the cluster (those added later too), one after the
 * other, once per `everyMs` from start() (and once per round()). Each scrape
 * of a running process goes to `onScrape`.
 */
export class NodeScraper {
  private readonly lastSched = new Map<number, { pid: number; at: SchedTimes }>();
  private rounds = 0;
  private running: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly cluster: LocalCluster, private readonly onScrape: (s: NodeScrape) => void) {}

  start(everyMs = 1000): void {
    this.timer = setInterval(() => void this.round(), everyMs);
  }

  /** Stops the rounds; resolves once the last one is done. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    await this.running;
  }

  /** One round now, after any round still running. */
  round(): Promise<void> {
    const round = this.rounds++;
    this.running = this.running.then(async () => {
      for (const n of [...this.cluster.nodes]) await this.scrape(n.id, n.proc?.pid, round);
    });
    return this.running;
  }

  private async scrape(id: number, pid: number | undefined, round: number): Promise<void> {
    if (pid === undefined) return;
    const text = await this.cluster.metricsOf(id).catch(() => "");
    const stallMs = text === "" ? undefined : metricOf(text, "nodejs_eventloop_lag_max_seconds") * 1000;
    this.onScrape({ id, round, stallMs, sched: this.schedSince(id, pid) });
  }

  /** The main thread's times since the last scrape of the same process. */
  private schedSince(id: number, pid: number): SchedTimes | undefined {
    const at = mainThreadSched(pid);
    const last = this.lastSched.get(id);
    if (at === undefined) return undefined;
    this.lastSched.set(id, { pid, at });
    return last?.pid === pid ? { ranMs: at.ranMs - last.at.ranMs, waitedMs: at.waitedMs - last.at.waitedMs } : undefined;
  }
}

/** A node's scrapes after the first round: its per-second stalls, and its main thread's times in each of those seconds. */
export interface NodeSeconds {
  readonly stallMs: number[];
  readonly sched: Array<SchedTimes | undefined>;
}

/**
 * Scrapes nodes `ids` once a second until stop(), which resolves with each
 * node's NodeSeconds. The first round only ends the window before the call
 * (a start-up, an earlier phase); a node that first answers later counts
 * from then, whole start included.
 */
export function sampleStalls(cluster: LocalCluster, ids: readonly number[]): { stop(): Promise<Map<number, NodeSeconds>> } {
  const out = new Map<number, NodeSeconds>(ids.map((id) => [id, { stallMs: [], sched: [] }]));
  const scraper = new NodeScraper(cluster, (s) => {
    const xs = out.get(s.id);
    if (xs === undefined || s.round === 0 || s.stallMs === undefined) return;
    xs.stallMs.push(s.stallMs);
    xs.sched.push(s.sched);
  });
  void scraper.round();
  scraper.start();
  return { stop: async () => { await scraper.stop(); return out; } };
}

/** At most this many begins per user between two settles: a record never holds more pending attempts. */
export const BEGINS_PER_USER = 8;
/** Consecutive begins go to STRIDE distinct users (more than any number in flight); the pool grows by whole strides. */
const STRIDE = 256;

/** How a row spent its users: how many it began, the most begins one took (above BEGINS_PER_USER only if the pool ran out), failed confirmations. */
export interface RowUsers {
  readonly users: number;
  readonly maxBegins: number;
  readonly confirmFailures: number;
}

/** "users begun / most begins of one user", and failed confirmations if any: a row's cell. */
export function describeRowUsers(u: RowUsers): string {
  return `${u.users} / ${u.maxBegins}${u.confirmFailures > 0 ? ` (${u.confirmFailures} confirms failed)` : ""}`;
}

/**
 * Users for BeginRecovery rows that measure the same work at any position in
 * a run: between two settles, begin c goes to user
 * (c mod STRIDE) + STRIDE·⌊c / (STRIDE·BEGINS_PER_USER)⌋, so every user
 * takes BEGINS_PER_USER begins (its record holds 0..7 pending attempts when
 * a begin applies); settle() confirms each user's last attempt, which
 * clears its pending attempts and resets its counter. The bench registers
 * the users itself (createRegistration) to hold their reset keys. Every
 * call goes to the leader; a failure sends the next calls to the leader
 * found then, and the untimed calls (registrations, confirmations) retry
 * with the same request id, which the vault applies at most once.
 */
export class BeginUsers {
  private readonly keys: bigint[] = [];
  private readonly last = new Map<number, bigint>();
  private readonly begins = new Map<number, number>();
  private calls = 0;
  private vault: Vault;
  private finding: Promise<void> | undefined;

  private constructor(private readonly cluster: LocalCluster, private leaderId: number, private readonly d: ClusterDescriptor) {
    this.vault = cluster.vault(leaderId);
  }

  static async of(cluster: LocalCluster): Promise<BeginUsers> {
    return new BeginUsers(cluster, await cluster.leaderId(), await cluster.descriptor());
  }

  /** The node processes' pids, the leader last found first. */
  get pids(): Array<number | undefined> {
    return pidsLeaderFirst(this.cluster, this.leaderId);
  }

  /** Registers users (outside any timed row) until `calls` begins fit at BEGINS_PER_USER each. */
  async prepare(calls: number): Promise<void> {
    const want = Math.ceil(calls / (STRIDE * BEGINS_PER_USER)) * STRIDE;
    while (this.keys.length < want) {
      const from = this.keys.length;
      await Promise.all(Array.from({ length: 32 }, (_, k) => this.registerOne(from + k)));
    }
  }

  private async registerOne(u: number): Promise<void> {
    const reg = await createRegistrationAsync({
      clusterId: this.d.clusterId, user: `b${u}`, password: "x", backupKey: new Uint8Array(randomBytes(32)), threshold: this.d.threshold,
      guessLimit: 255, nodes: this.d.nodes.map((n) => ({ id: n.nodeId, agreementPublicKey: n.agreementPublicKey })), scrypt: CHEAP_SCRYPT,
    });
    const req = registerRequest(reg, new Uint8Array(randomBytes(16)));
    await this.retrying(() => this.vault.register(req, { deadline: new Date(Date.now() + 30_000) }));
    this.keys[u] = reg.resetPrivateKey;
  }

  /** One BeginRecovery of the next user with `blinded` (the pool wraps when a row outruns prepare). */
  async begin(blinded: Uint8Array): Promise<unknown> {
    const c = this.calls++;
    const u = ((c % STRIDE) + STRIDE * Math.floor(c / (STRIDE * BEGINS_PER_USER))) % this.keys.length;
    const res = await this.vault.beginRecovery({ requestId: new Uint8Array(randomBytes(16)), userId: `b${u}`, blindedElement: blinded }, { deadline: new Date(Date.now() + 10_000) })
      .catch((err: unknown) => {
        void this.findLeader();
        throw err;
      });
    this.begins.set(u, (this.begins.get(u) ?? 0) + 1);
    if (res.attemptId > (this.last.get(u) ?? 0n)) this.last.set(u, res.attemptId);
    return res;
  }

  /** After a row (outside its timing): confirms every user begun since the last settle; what the row spent. */
  async settle(): Promise<RowUsers> {
    const todo = [...this.last];
    let confirmFailures = 0;
    for (let i = 0; i < todo.length; i += 32) {
      await Promise.all(todo.slice(i, i + 32).map(([u, attemptId]) => this.confirmOne(u, attemptId).catch(() => { confirmFailures++; })));
    }
    const row = { users: this.begins.size, maxBegins: Math.max(0, ...this.begins.values()), confirmFailures };
    this.last.clear();
    this.begins.clear();
    this.calls = 0;
    return row;
  }

  private confirmOne(u: number, attemptId: bigint): Promise<unknown> {
    const ref = { clusterId: this.d.clusterId, user: `b${u}`, version: 1 };
    const req = { requestId: new Uint8Array(randomBytes(16)), userId: ref.user, version: ref.version, attemptId, signature: signConfirm(this.keys[u]!, ref, attemptId) };
    return this.retrying(() => this.vault.confirmRecovery(req, { deadline: new Date(Date.now() + 30_000) }));
  }

  /** `call`, again after finding the leader (up to 5 tries in all). */
  private async retrying<T>(call: () => Promise<T>): Promise<T> {
    for (let tries = 1; ; tries++) {
      try {
        return await call();
      } catch (err) {
        if (tries >= 5) throw err;
        await new Promise((resolve) => setTimeout(resolve, 200 * tries));
        await this.findLeader();
      }
    }
  }

  private findLeader(): Promise<void> {
    return (this.finding ??= this.cluster.leaderId().then((id) => {
      if (id !== this.leaderId) [this.leaderId, this.vault] = [id, this.cluster.vault(id)];
    }).catch(() => {}).finally(() => { this.finding = undefined; }));
  }
}

export interface BeginBench {
  readonly cluster: LocalCluster;
  /** The node processes' pids, the current leader first. */
  readonly pids: Array<number | undefined>;
  /** One committed BeginRecovery to the leader (BeginUsers.begin), with a fresh blinded element. */
  begin(i: number): Promise<unknown>;
  /** Before a row: users for `calls` begins (BeginUsers.prepare). */
  prepare(calls: number): Promise<void>;
  /** After a row: confirms its users' attempts (BeginUsers.settle). */
  settle(): Promise<RowUsers>;
}

/** Starts a cluster, registers `users` users (BeginUsers.prepare), and returns the BeginRecovery driver. */
export async function startBeginBench(users: number, points = 60_000): Promise<BeginBench> {
  const cluster = await LocalCluster.start({ clusterId: "bench" });
  try {
    const pool = await BeginUsers.of(cluster);
    await pool.prepare(users * BEGINS_PER_USER);
    const blinded = distinctPoints(points);
    let next = 0;
    return {
      cluster,
      get pids() {
        return pool.pids;
      },
      begin: () => pool.begin(blinded[next++ % blinded.length]!),
      prepare: (n) => pool.prepare(n),
      settle: () => pool.settle(),
    };
  } catch (err) {
    await cluster.close();
    throw err;
  }
}

/** The node processes' pids, `leader` first. */
export function pidsLeaderFirst(cluster: LocalCluster, leader: number): Array<number | undefined> {
  return [...cluster.nodes].sort((a, b) => Number(b.id === leader) - Number(a.id === leader)).map((n) => n.proc?.pid);
}

/**
 * Stops the nodes (bounded, and safe when Ctrl-C already stopped them), then
 * LocalCluster.close (channels, temp dir).
 */
export async function stopCluster(cluster: LocalCluster | undefined): Promise<void> {
  if (cluster === undefined) return;
  await Promise.all(cluster.nodes.map(async (n) => {
    if (n.proc !== null) await stopChild(n.proc);
    n.proc = null;
  }));
  await cluster.close();
}

/** Synchronous last resort (process 'exit'): SIGKILL the nodes, remove the cluster's dir (kept with BKV_E2E_KEEP, as LocalCluster.close keeps it). */
export function killClusterNow(cluster: LocalCluster | undefined): void {
  if (cluster === undefined) return;
  for (const n of cluster.nodes) n.proc?.kill("SIGKILL");
  if (process.env.BKV_E2E_KEEP === undefined) rmSync(cluster.dir, { recursive: true, force: true });
}

/** Seconds until node `id` answers and has applied `index`. */
export async function secondsToApply(cluster: LocalCluster, id: number, index: number, t0: number): Promise<number> {
  await waitFor(async () => {
    failIfANodeDied(cluster);
    const s = await cluster.status(id).catch(() => undefined);
    return s !== undefined && Number(s.appliedIndex) >= index ? true : undefined;
  }, `node ${id} to apply ${index}`, 30 * 60_000);
  return (performance.now() - t0) / 1000;
}

/** Throws, naming the node and its last log lines, when a node process exited (a wait would last its whole timeout). */
function failIfANodeDied(cluster: LocalCluster): void {
  const dead = cluster.nodes.find((n) => n.proc !== null && n.proc.exitCode !== null);
  if (dead === undefined) return;
  const tail = cluster.logOf(dead.id).trim().split("\n").slice(-3).join("\n  ");
  throw new Error(`node ${dead.id} exited (code ${String(dead.proc?.exitCode)}); the end of its log:\n  ${tail}`);
}
