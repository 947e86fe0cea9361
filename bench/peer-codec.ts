// The codec work of one Raft message on a peer stream, alone (no sockets):
// encode = what Peer.writeBatch and the Stream method's serializer do
// (toWire, the StreamRequest frame, requestSerialize), decode = what the
// method's deserializer and inbound.ts do (requestDeserialize: the strict
// check and protobuf-es; fromWire of each message). One message per frame,
// as at 1 in flight. Prints CPU µs per message (process.cpuUsage, so that
// other load changes little) for a heartbeat, its response, a MsgApp of one
// 300-byte entry and its response. --root DIR runs another checkout's code
// (e.g. an export of main), so that base and branch rows alternate.
// Run: npx tsx bench/peer-codec.ts [--root DIR] [--seconds 2]
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import type { Message } from "../node/raft/index.js";

const { values } = parseArgs({ options: { root: { type: "string", default: "." }, seconds: { type: "string", default: "2" } } });
const root = resolve(values.root);
const load = <T>(p: string): Promise<T> => import(pathToFileURL(`${root}/${p}`).href) as Promise<T>;

const { toWire, fromWire } = await load<typeof import("../node/transport/convert.js")>("node/transport/convert.ts");
const { serviceDefinition } = await load<typeof import("../proto/rpc.js")>("proto/rpc.ts");
const gen = await load<typeof import("../proto/gen/bkv/v1/raft_pb.js")>("proto/gen/bkv/v1/raft_pb.ts");
const stream = serviceDefinition(gen.RaftService).stream;
type StreamRequest = import("../proto/gen/bkv/v1/raft_pb.js").StreamRequest;

const base: Message = {
  type: 8, from: 1, to: 2, term: 7, logTerm: 0, index: 0, entries: [], commit: 123_456, reject: false, rejectHint: 0,
  snapshot: null, context: new Uint8Array(0),
};
const cases: Array<[string, Message]> = [
  ["heartbeat", base],
  ["heartbeat resp", { ...base, type: 9, from: 2, to: 1, commit: 0 }],
  ["append, 1 entry of 300 B", { ...base, type: 6, logTerm: 7, index: 123_456, entries: [{ term: 7, index: 123_457, type: 0, data: new Uint8Array(300).fill(7) }] }],
  ["append resp", { ...base, type: 7, from: 2, to: 1, index: 123_457, commit: 0 }],
];

function encode(m: Message): Buffer {
  const frame = create(gen.StreamRequestSchema, {
    frame: { case: "batch", value: create(gen.MessageBatchSchema, { messages: [toWire(m)] }) },
  });
  return stream.requestSerialize(frame);
}

function decode(bytes: Buffer): number {
  const req = stream.requestDeserialize(bytes) as StreamRequest;
  if (req.frame.case !== "batch") throw new Error("not a batch");
  let n = 0;
  for (const w of req.frame.value.messages) if (!(fromWire(w) instanceof Error)) n++;
  return n;
}

/** This process's CPU time in µs (user + system). */
const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** CPU µs per call of f, over `seconds` of CPU time after a warm-up. */
function perCall(f: () => unknown, seconds: number): number {
  for (let i = 0; i < 20_000; i++) f();
  let n = 0;
  const t0 = cpuUs();
  while (cpuUs() - t0 < seconds * 1e6) {
    for (let i = 0; i < 1000; i++) f();
    n += 1000;
  }
  return (cpuUs() - t0) / n;
}

const seconds = Number(values.seconds);
console.log(`root ${root}`);
for (const [name, m] of cases) {
  const bytes = encode(m);
  const enc = perCall(() => encode(m), seconds);
  const dec = perCall(() => decode(bytes), seconds);
  console.log(`${name.padEnd(26)} ${String(bytes.length).padStart(4)} B  encode ${enc.toFixed(2)} µs  decode ${dec.toFixed(2)} µs`);
}
