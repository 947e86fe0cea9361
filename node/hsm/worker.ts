// Worker-thread side of HsmWorkerPool: one Hsm with blocking calls, answering
// the requests posted by the main thread. The thread says "loaded" as soon as
// its code is; it opens the token only when asked ("open"), so that a pool
// can load new threads while the old ones still serve (a module restart).
import { parentPort, workerData } from "node:worker_threads";
import { p256 } from "@noble/curves/nist.js";
import { G, randomScalar, wrapShare } from "../../proto/crypto/index.js";
import { HsmError } from "./errors.js";
import { Hsm } from "./hsm.js";
import type { WorkerInit, WorkerMemory, WorkerReply, WorkerRequest } from "./worker-pool.js";

const port = parentPort;
if (port === null) throw new Error("node/hsm/worker.ts must run in a worker thread");
const init = workerData as WorkerInit;
let hsm: Hsm | null = null;

function replyError(id: number, err: unknown): WorkerReply {
  if (err instanceof HsmError) return { id, error: { code: err.code, message: err.message, ckr: err.ckr } };
  return { id, error: { code: "HSM_ERROR", message: "the HSM worker failed", ckr: undefined } };
}

/** This thread's isolate: heap, and external memory (its array buffers among it). */
function isolateMemory(): WorkerMemory {
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

/**
 * Runs the JS half of Hsm.open's self-test once on throwaway keys (noble's
 * point tables, the JIT), so that a restart's switch, which calls wait for,
 * does not pay for it in a fresh isolate.
 */
function warmUp(): void {
  const secret = p256.utils.randomSecretKey();
  const message = new Uint8Array(32);
  const signature = p256.sign(message, secret, { prehash: true, lowS: true });
  if (!p256.verify(signature, message, p256.getPublicKey(secret, false), { prehash: true, lowS: true })) throw new Error("noble's self-check failed");
  wrapShare(G.multiply(randomScalar()).toBytes(false), randomScalar());
}

async function open(id: number): Promise<WorkerReply> {
  hsm ??= await Hsm.open(init.config, { strategy: "sync", sessionKeyCopies: init.sessionKeyCopies });
  return { id, ready: { agreement: hsm.agreementPublicKey, identity: hsm.identityPublicKey, generated: hsm.keysGenerated } };
}

async function handle(req: WorkerRequest): Promise<WorkerReply> {
  try {
    if (req.op === "open") return await open(req.id);
    if (req.op === "memory") return { id: req.id, memory: isolateMemory() };
    if (req.op === "close") {
      hsm?.close();
      hsm = null;
      return { id: req.id, value: new Uint8Array(0) };
    }
    if (hsm === null) throw new HsmError("CLOSED", "the HSM worker has not opened the token");
    if (req.op === "evaluate") return { id: req.id, value: await hsm.evaluate(req.blob, req.blinded, req.commitment) };
    if (req.op === "evaluateSigned") return { id: req.id, signed: await hsm.evaluateSigned(req.blob, req.blinded, req.commitment, req.about) };
    return { id: req.id, value: await hsm.sign(req.message) };
  } catch (err) {
    return replyError(req.id, err);
  }
}

port.on("message", (req: WorkerRequest) => {
  void handle(req).then((reply) => port.postMessage(reply));
});
warmUp();
port.postMessage({ id: 0, loaded: true } satisfies WorkerReply);
