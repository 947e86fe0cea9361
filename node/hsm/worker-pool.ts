// The same API as Hsm, served by worker threads that each call the token
// with blocking calls. PKCS#11 state is per process: the first worker
// initializes the module and bootstraps the keys, the others join it
// (CKR_CRYPTOKI_ALREADY_INITIALIZED, CKR_USER_ALREADY_LOGGED_IN) and open
// their own sessions. SOFTHSM2_CONF must be set from the main thread (a
// worker's process.env is a private copy that the module never sees).
import { Worker } from "node:worker_threads";
import type { HsmConfig } from "./config.js";
import { HsmError, type HsmErrorCode } from "./errors.js";

export interface WorkerInit {
  config: HsmConfig;
  sessionKeyCopies: boolean;
}

export type WorkerRequest =
  | { id: number; op: "evaluate"; blob: Uint8Array; blinded: Uint8Array; commitment: Uint8Array }
  | { id: number; op: "sign"; message: Uint8Array }
  | { id: number; op: "close" };

export type WorkerReply =
  | { id: number; value: Uint8Array }
  | { id: number; ready: { agreement: Uint8Array; identity: Uint8Array } }
  | { id: number; error: { code: HsmErrorCode; message: string; ckr: string | undefined } };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * Starts node/hsm/worker in a thread. When running from TypeScript sources
 * (tsx), the worker registers tsx itself: Node 20 does not apply the parent's
 * --import loader to a worker's entry module.
 */
function spawnWorker(init: WorkerInit): Worker {
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL("./worker.js", import.meta.url), { workerData: init });
  const entry = JSON.stringify(new URL("./worker.ts", import.meta.url).href);
  const code = `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${entry}); });`;
  return new Worker(code, { eval: true, workerData: init });
}

interface Pending { resolve: (v: Uint8Array) => void; reject: (e: Error) => void }

class HsmWorker {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  private constructor(readonly worker: Worker) {
    worker.on("message", (reply: WorkerReply) => this.settle(reply));
    worker.on("error", () => this.failAll());
    worker.on("exit", () => this.failAll());
  }

  static start(init: WorkerInit): Promise<{ w: HsmWorker; keys: { agreement: Uint8Array; identity: Uint8Array } }> {
    const worker = spawnWorker(init);
    return new Promise((resolve, reject) => {
      worker.once("message", (reply: WorkerReply) => {
        if ("ready" in reply) resolve({ w: new HsmWorker(worker), keys: reply.ready });
        else if ("error" in reply) reject(new HsmError(reply.error.code, reply.error.message, reply.error.ckr));
      });
      worker.once("error", (err) => reject(new HsmError("HSM_ERROR", `the HSM worker failed to start: ${err.message}`)));
    });
  }

  get inFlight(): number {
    return this.pending.size;
  }

  call(req: DistributiveOmit<WorkerRequest, "id">): Promise<Uint8Array> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id });
    });
  }

  private settle(reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    if (p === undefined) return;
    this.pending.delete(reply.id);
    if ("error" in reply) p.reject(new HsmError(reply.error.code, reply.error.message, reply.error.ckr));
    else if ("value" in reply) p.resolve(reply.value);
  }

  private failAll(): void {
    for (const p of this.pending.values()) p.reject(new HsmError("CLOSED", "the HSM worker exited"));
    this.pending.clear();
  }
}

export class HsmWorkerPool {
  private constructor(
    private readonly workers: HsmWorker[],
    readonly agreementPublicKey: Uint8Array,
    readonly identityPublicKey: Uint8Array,
  ) {}

  /** Starts `threads` workers on the configured token; the first one bootstraps the keys. */
  static async open(config: HsmConfig, threads: number, sessionKeyCopies = true): Promise<HsmWorkerPool> {
    if (!Number.isInteger(threads) || threads < 1) throw new HsmError("CONFIG_INVALID", "threads must be >= 1");
    if (config.softhsmConf !== undefined) process.env.SOFTHSM2_CONF = config.softhsmConf;
    const init: WorkerInit = { config: { ...config, sessions: 1 }, sessionKeyCopies };
    const first = await HsmWorker.start(init);
    const rest = await Promise.all(Array.from({ length: threads - 1 }, () => HsmWorker.start(init)));
    return new HsmWorkerPool([first.w, ...rest.map((r) => r.w)], first.keys.agreement, first.keys.identity);
  }

  private leastBusy(): HsmWorker {
    let best = this.workers[0];
    if (best === undefined) throw new HsmError("CLOSED", "the HSM worker pool is closed");
    for (const w of this.workers) if (w.inFlight < best.inFlight) best = w;
    return best;
  }

  evaluate(blob: Uint8Array, blinded: Uint8Array, commitment: Uint8Array): Promise<Uint8Array> {
    return this.leastBusy().call({ op: "evaluate", blob, blinded, commitment });
  }

  sign(message: Uint8Array): Promise<Uint8Array> {
    return this.leastBusy().call({ op: "sign", message });
  }

  /** Closes the joining workers first: the first one finalizes the module. */
  async close(): Promise<void> {
    const ws = this.workers.splice(0).reverse();
    for (const w of ws) {
      await w.call({ op: "close" }).catch(() => undefined);
      await w.worker.terminate();
    }
  }
}
