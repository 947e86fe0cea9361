// Worker-thread side of WorkerPairHasher (pair-hashers.ts): sums the LtHash
// of each batch of pairs posted to it and answers with that partial sum.
// A batch is the pairs framed as in the snapshot stream (u32 key length ||
// key || u32 value length || value, big-endian), built by the main thread.
import { parentPort } from "node:worker_threads";
import { LtHash } from "../vault/index.js";
import type { HashReply, HashRequest } from "./pair-hashers.js";

const port = parentPort;
if (port === null) throw new Error("node/server/pair-hash-worker.ts must run in a worker thread");

/** The LtHash state of the pairs framed in `batch[0, length)`; throws on a framing error (a bug of the main thread). */
function hashBatch(batch: ArrayBuffer, length: number): Uint8Array {
  const b = Buffer.from(batch, 0, length);
  const sum = new LtHash();
  let at = 0;
  while (at < length) {
    const klen = b.readUInt32BE(at);
    const vlen = b.readUInt32BE(at + 4 + klen);
    const end = at + 8 + klen + vlen;
    if (end > length) throw new Error(`a pair framed past the batch's end (${end} > ${length})`);
    sum.add(b.subarray(at + 4, at + 4 + klen), b.subarray(at + 8 + klen, end));
    at = end;
  }
  return sum.state();
}

port.on("message", (req: HashRequest) => {
  let reply: HashReply;
  try {
    reply = { id: req.id, sum: hashBatch(req.batch, req.length) };
  } catch (err) {
    reply = { id: req.id, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
