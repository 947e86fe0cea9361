// Worker-thread side of WorkerPairHasher (pair-hashers.ts): sums the LtHash
// of each batch of pairs posted to it and answers with that partial sum.
// A batch is the pairs framed as in the snapshot stream (u32 key length ||
// key || u32 value length || value, big-endian), built by the main thread.
import { parentPort } from "node:worker_threads";
import { type HashReply, type HashRequest, hashBatch } from "./pair-hashers.js";

const port = parentPort;
if (port === null) throw new Error("node/server/pair-hash-worker.ts must run in a worker thread");

port.on("message", (req: HashRequest) => {
  let reply: HashReply;
  try {
    reply = { id: req.id, sum: hashBatch(req.batch, req.length) };
  } catch (err) {
    reply = { id: req.id, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
