// Worker-thread side of HsmWorkerPool: one Hsm with blocking calls, answering
// evaluate/sign requests posted by the main thread.
import { parentPort, workerData } from "node:worker_threads";
import { HsmError } from "./errors.js";
import { Hsm } from "./hsm.js";
import type { WorkerInit, WorkerReply, WorkerRequest } from "./worker-pool.js";

const port = parentPort;
if (port === null) throw new Error("node/hsm/worker.ts must run in a worker thread");
const init = workerData as WorkerInit;

function replyError(id: number, err: unknown): WorkerReply {
  if (err instanceof HsmError) return { id, error: { code: err.code, message: err.message, ckr: err.ckr } };
  return { id, error: { code: "HSM_ERROR", message: "the HSM worker failed", ckr: undefined } };
}

async function handle(hsm: Hsm, req: WorkerRequest): Promise<WorkerReply> {
  try {
    if (req.op === "evaluate") return { id: req.id, value: await hsm.evaluate(req.blob, req.blinded, req.commitment) };
    if (req.op === "sign") return { id: req.id, value: await hsm.sign(req.message) };
    hsm.close();
    return { id: req.id, value: new Uint8Array(0) };
  } catch (err) {
    return replyError(req.id, err);
  }
}

try {
  const hsm = await Hsm.open(init.config, { strategy: "sync", sessionKeyCopies: init.sessionKeyCopies });
  port.on("message", (req: WorkerRequest) => {
    void handle(hsm, req).then((reply) => port.postMessage(reply));
  });
  port.postMessage({ id: 0, ready: { agreement: hsm.agreementPublicKey, identity: hsm.identityPublicKey } });
} catch (err) {
  port.postMessage(replyError(0, err));
}
