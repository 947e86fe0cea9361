// The same API as Hsm, served by worker threads that each call the token
// with blocking calls. PKCS#11 state is per process: the first worker
// initializes the module and bootstraps the keys, the others join it
// (CKR_CRYPTOKI_ALREADY_INITIALIZED, CKR_USER_ALREADY_LOGGED_IN) and open
// their own sessions. SOFTHSM2_CONF must be set from the main thread (a
// worker's process.env is a private copy that the module never sees).
import assert from "node:assert/strict";
import type { Worker } from "node:worker_threads";
import type { HsmConfig } from "./config.js";
import type { EvaluationAbout, SignedEvaluation } from "./hsm.js";
import { moduleWorker } from "./module-worker.js";
import { HsmError, type HsmErrorCode } from "./errors.js";

export interface WorkerInit {
  config: HsmConfig;
  sessionKeyCopies: boolean;
}

/** A worker thread's own isolate (process.memoryUsage() there), bytes. */
export interface WorkerMemory {
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export type WorkerRequest =
  | { id: number; op: "open" }
  | { id: number; op: "evaluate"; blob: Uint8Array; blinded: Uint8Array; commitment: Uint8Array }
  | { id: number; op: "evaluateSigned"; blob: Uint8Array; blinded: Uint8Array; commitment: Uint8Array; about: EvaluationAbout }
  | { id: number; op: "sign"; message: Uint8Array }
  | { id: number; op: "memory" }
  | { id: number; op: "close" };

/** The token's public keys, and whether this worker's open generated them (Hsm.keysGenerated). */
type Keys = { agreement: Uint8Array; identity: Uint8Array; generated: boolean };

export type WorkerReply =
  | { id: number; loaded: true }
  | { id: number; ready: Keys }
  | { id: number; value: Uint8Array }
  | { id: number; signed: SignedEvaluation }
  | { id: number; memory: WorkerMemory }
  | { id: number; error: { code: HsmErrorCode; message: string; ckr: string | undefined } };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Call = DistributiveOmit<WorkerRequest, "id">;
/** What each request answers. */
interface Answers { open: Keys; evaluate: Uint8Array; evaluateSigned: SignedEvaluation; sign: Uint8Array; memory: WorkerMemory; close: Uint8Array }
/** The token operations a call makes (what a module restart counts). */
const OPERATIONS = { evaluate: 1, evaluateSigned: 2, sign: 1 } as const;
type TokenCall = Extract<Call, { op: keyof typeof OPERATIONS }>;

/** Starts node/hsm/worker in a thread (module-worker.ts: from dist/ or the sources under tsx). */
function spawnWorker(init: WorkerInit): Worker {
  return moduleWorker(import.meta.url, "worker", { workerData: init });
}

interface Pending { resolve: (v: unknown) => void; reject: (e: Error) => void }

/**
 * Resolves with `worker` at its first message (its code is loaded); rejects
 * with an HsmError when it fails or exits before that. A thread can end
 * without an 'error' event (process.exit in it, or terminate()): without the
 * 'exit' listener its start would never settle, and the pool's open with it.
 */
export function whenLoaded(worker: Worker): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const settle = (why: string | null) => {
      worker.off("message", loaded).off("error", onError).off("exit", onExit);
      if (why === null) resolve(worker);
      else reject(new HsmError("HSM_ERROR", `the HSM worker failed to start: ${why}`));
    };
    const loaded = () => settle(null);
    const onError = (err: Error) => settle(err.message);
    const onExit = (code: number) => settle(`its thread exited (code ${code}) before its code loaded`);
    worker.once("message", loaded).once("error", onError).once("exit", onExit);
  });
}

/** One worker thread: started with its code loaded (spawn), then the token opened in it (open). */
class HsmWorker {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** False once the thread exited or failed: it takes no more calls. */
  alive = true;

  private constructor(readonly worker: Worker) {
    worker.on("message", (reply: WorkerReply) => this.settle(reply));
    worker.on("error", () => this.failAll());
    worker.on("exit", () => this.failAll());
  }

  /** A thread whose code is loaded; it has not touched the token yet. */
  static async spawn(init: WorkerInit): Promise<HsmWorker> {
    return new HsmWorker(await whenLoaded(spawnWorker(init)));
  }

  get inFlight(): number {
    return this.pending.size;
  }

  call<C extends Call>(req: C): Promise<Answers[C["op"]]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id });
    });
  }

  async stop(): Promise<void> {
    await this.call({ op: "close" }).catch(() => undefined);
    await this.worker.terminate();
  }

  private settle(reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    if (p === undefined) return;
    this.pending.delete(reply.id);
    if ("error" in reply) p.reject(new HsmError(reply.error.code, reply.error.message, reply.error.ckr));
    else if ("value" in reply) p.resolve(reply.value);
    else if ("signed" in reply) p.resolve(reply.signed);
    else if ("memory" in reply) p.resolve(reply.memory);
    else if ("ready" in reply) p.resolve(reply.ready);
  }

  private failAll(): void {
    this.alive = false;
    for (const p of this.pending.values()) p.reject(new HsmError("CLOSED", "the HSM worker exited"));
    this.pending.clear();
  }
}

export interface PoolOptions {
  /** Worker threads (default 2). */
  readonly threads?: number;
  /** Session copies of the agreement key (default true). */
  readonly sessionKeyCopies?: boolean;
  /**
   * The most operations after which the module is finalized and initialized
   * again (default 20,000; 0: never). SoftHSM 2.6 keeps every destroyed
   * session object until C_Finalize (SoftHSMv2 #562, #875): ~1 KiB per
   * evaluation. Each interval is drawn anew in (recycleAfter/2,
   * recycleAfter] (restartInterval), so that the nodes of a cluster, which
   * count the same evaluations, do not restart at the same moment.
   */
  readonly recycleAfter?: number;
  /** Uniform in [0, 1) (default Math.random): draws the restart intervals. */
  readonly random?: () => number;
}

/** How often a module that could not be restarted is tried again. */
const RESTART_RETRY_MS = 5_000;

export const DEFAULT_POOL: Required<PoolOptions> = { threads: 2, sessionKeyCopies: true, recycleAfter: 20_000, random: Math.random };

/**
 * The operations until the next module restart: uniform in (recycleAfter/2,
 * recycleAfter] (0: never). The bound on SoftHSM's garbage is recycleAfter's;
 * the spread staggers restarts across nodes, whose calls all wait for a
 * switch (an SDK needs t answers: one node restarting at a time costs it
 * nothing).
 */
export function restartInterval(recycleAfter: number, random: () => number): number {
  if (recycleAfter === 0) return 0;
  const u = random();
  if (!(u >= 0 && u < 1)) throw new HsmError("CONFIG_INVALID", `random() must be in [0, 1) (got ${u})`);
  return recycleAfter - Math.floor(u * Math.floor(recycleAfter / 2));
}

const NO_MEMORY: WorkerMemory = { heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };

/** Starts `threads` threads with their code loaded; none has touched the token yet. */
async function spawnWorkers(init: WorkerInit, threads: number): Promise<HsmWorker[]> {
  const started = await Promise.allSettled(Array.from({ length: threads }, () => HsmWorker.spawn(init)));
  const workers = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  await stopOnFailure(started, workers);
  return workers;
}

/**
 * Opens the token in spawned workers: the first initializes the module and
 * bootstraps the keys, then the others join. Resolves with the first's
 * answer: only its open may have generated the keys. On a failure every one
 * is stopped.
 */
async function openWorkers(workers: readonly HsmWorker[]): Promise<Keys> {
  const [first, ...rest] = workers;
  assert(first !== undefined, "a pool has at least one worker");
  const keys = await first.call({ op: "open" }).catch(async (err: unknown) => {
    await stopWorkers(workers);
    throw err;
  });
  await stopOnFailure(await Promise.allSettled(rest.map((w) => w.call({ op: "open" }))), workers);
  return keys;
}

/** Stops `workers` and throws the first failure among `settled`, if there is one. */
async function stopOnFailure(settled: readonly PromiseSettledResult<unknown>[], workers: readonly HsmWorker[]): Promise<void> {
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed === undefined) return;
  await stopWorkers(workers);
  throw failed.reason;
}

/** Stops the joining workers first: the first one finalizes the module. */
async function stopWorkers(workers: readonly HsmWorker[]): Promise<void> {
  for (const w of [...workers].reverse()) await w.stop();
}

/**
 * The node's HSM: blocking PKCS#11 calls on worker threads (pkcs11js's
 * *Async calls leak ~3 KiB each; docs/hsm.md), and a module recycled after
 * at most `recycleAfter` operations (restartInterval). The new threads load
 * their code while the old ones still serve; calls wait only for the switch
 * (the calls in flight drained, the module finalized, the token opened again
 * in the new threads).
 */
export class HsmWorkerPool {
  /**
   * Operations since the module was (re)initialized, how many times it was,
   * how long calls waited for the last switch (ms, the drain included), and
   * the operations at which the next restart starts (restartInterval; 0: never).
   */
  readonly stats: { operations: number; recycles: number; lastRestartMs: number; restartAt: number };
  private inFlight = 0;
  /** A restart under way, from the new threads' spawn to the end of the switch. */
  private recycling: Promise<void> | null = null;
  /** The part of a restart that calls wait for. */
  private switching: Promise<void> | null = null;
  private drained: (() => void) | null = null;
  private broken: Error | null = null;
  private brokenAt = 0;

  private constructor(
    private workers: HsmWorker[],
    private readonly init: WorkerInit,
    private readonly options: Required<PoolOptions>,
    readonly agreementPublicKey: Uint8Array,
    readonly identityPublicKey: Uint8Array,
    /**
     * True when the pool's open generated the node keys (the token held none:
     * the node's first start on it); false when it found them. Fixed at open:
     * a module restart finds the keys and does not change it.
     */
    readonly keysGenerated: boolean,
  ) {
    this.stats = { operations: 0, recycles: 0, lastRestartMs: 0, restartAt: restartInterval(options.recycleAfter, options.random) };
  }

  /**
   * Starts the threads and opens the token in them. The token is opened (and
   * the node keys generated at the token's first use) only once `openAfter`
   * resolves; the threads load their code meanwhile. When it rejects, the
   * threads are stopped and open rejects with its reason, the token untouched.
   */
  static async open(config: HsmConfig, options: PoolOptions = {}, openAfter: Promise<unknown> = Promise.resolve()): Promise<HsmWorkerPool> {
    openAfter.catch(() => undefined); // a rejection before it is awaited below is not an unhandled one
    const o = { ...DEFAULT_POOL, ...options };
    if (!Number.isInteger(o.threads) || o.threads < 1) throw new HsmError("CONFIG_INVALID", "threads must be >= 1");
    if (!Number.isInteger(o.recycleAfter) || o.recycleAfter < 0) throw new HsmError("CONFIG_INVALID", "recycleAfter must be >= 0");
    if (config.softhsmConf !== undefined) process.env.SOFTHSM2_CONF = config.softhsmConf;
    const init: WorkerInit = { config: { ...config, sessions: 1 }, sessionKeyCopies: o.sessionKeyCopies };
    const workers = await spawnWorkers(init, o.threads);
    await openAfter.catch(async (err: unknown) => {
      await stopWorkers(workers);
      throw err;
    });
    const keys = await openWorkers(workers);
    return new HsmWorkerPool(workers, init, o, keys.agreement, keys.identity, keys.generated);
  }

  evaluate(blob: Uint8Array, blinded: Uint8Array, commitment: Uint8Array): Promise<Uint8Array> {
    return this.run({ op: "evaluate", blob, blinded, commitment });
  }

  evaluateSigned(blob: Uint8Array, blinded: Uint8Array, commitment: Uint8Array, about: EvaluationAbout): Promise<SignedEvaluation> {
    return this.run({ op: "evaluateSigned", blob, blinded, commitment, about });
  }

  sign(message: Uint8Array): Promise<Uint8Array> {
    return this.run({ op: "sign", message });
  }

  async close(): Promise<void> {
    while (this.recycling !== null) await this.recycling;
    await stopWorkers(this.workers.splice(0));
  }

  /** The worker threads' isolates together (zeros while the module restarts). */
  async memory(): Promise<WorkerMemory> {
    const all = await Promise.all(this.workers.filter((w) => w.alive).map((w) => w.call({ op: "memory" }).catch(() => NO_MEMORY)));
    return all.reduce((a, m) => ({
      heapUsed: a.heapUsed + m.heapUsed, heapTotal: a.heapTotal + m.heapTotal, external: a.external + m.external, arrayBuffers: a.arrayBuffers + m.arrayBuffers,
    }), NO_MEMORY);
  }

  private async run<C extends TokenCall>(req: C): Promise<Answers[C["op"]]> {
    while (this.switching !== null) await this.switching;
    if (this.broken !== null) {
      // A failed restart is tried again, one at a time and at most every RESTART_RETRY_MS (a restart starts threads).
      if (Date.now() - this.brokenAt >= RESTART_RETRY_MS) await (this.recycling ??= this.recycle());
      if (this.broken !== null) throw this.broken;
    }
    const worker = this.leastBusy();
    this.inFlight++;
    this.stats.operations += OPERATIONS[req.op];
    try {
      return await worker.call(req);
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.drained?.();
      if (this.stats.restartAt > 0 && this.stats.operations >= this.stats.restartAt) this.recycling ??= this.recycle();
    }
  }

  private leastBusy(): HsmWorker {
    let best: HsmWorker | undefined;
    for (const w of this.workers) if (w.alive && (best === undefined || w.inFlight < best.inFlight)) best = w;
    if (best === undefined) throw new HsmError("CLOSED", "no HSM worker is running");
    return best;
  }

  /** Spawns the new threads while the old ones serve, then switches to them. */
  private async recycle(): Promise<void> {
    try {
      const spares = await spawnWorkers(this.init, this.options.threads).catch((err: unknown) => asHsmError(err));
      const switching = this.switchTo(spares).finally(() => { this.switching = null; });
      this.switching = switching;
      await switching;
    } finally {
      this.recycling = null;
    }
  }

  /** Waits for the calls in flight, stops the old workers (the module is finalized) and opens the token in `spares`. */
  private async switchTo(spares: HsmWorker[] | HsmError): Promise<void> {
    const t0 = performance.now();
    if (this.inFlight > 0) await new Promise<void>((resolve) => { this.drained = resolve; });
    this.drained = null;
    try {
      await stopWorkers(this.workers.splice(0));
      if (spares instanceof HsmError) throw spares;
      const keys = await openWorkers(spares);
      this.workers = spares;
      if (!Buffer.from(keys.agreement).equals(this.agreementPublicKey) || !Buffer.from(keys.identity).equals(this.identityPublicKey)) {
        throw new HsmError("KEY_INVALID", "the token's node keys changed across a module restart");
      }
      this.stats.recycles++;
      this.broken = null;
    } catch (err) {
      this.broken = asHsmError(err);
      this.brokenAt = Date.now();
    } finally {
      this.stats.operations = 0;
      this.stats.restartAt = restartInterval(this.options.recycleAfter, this.options.random);
      this.stats.lastRestartMs = performance.now() - t0;
    }
  }
}

function asHsmError(err: unknown): HsmError {
  return err instanceof HsmError ? err : new HsmError("HSM_ERROR", "the HSM module could not be restarted");
}
