// A hand-driven peer (raw frames over real mTLS) against a Transport: the
// receiver must refuse bad headers, drop malformed messages and survive
// frames that do not parse.

import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import {
  MessageBatchSchema, RaftMessageSchema, RaftMessageType, StreamRequestSchema, StreamHeaderSchema,
} from "../../proto/gen/bkv/v1/raft_pb.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { errorDetailOf } from "../../proto/rpc.js";
import { devCertFiles, loadTls } from "../../node/transport/index.js";
import { heartbeat, makeCerts, makeNode, waitFor, type TestNode } from "./helpers.js";

let certs: ReturnType<typeof makeCerts>;
const running: TestNode[] = [];
test.before(() => {
  certs = makeCerts([1, 2, 3]);
});
test.after.always(async () => {
  await Promise.all(running.map((n) => n.transport.stop()));
  certs.cleanup();
});

const identity = (b: Buffer) => b;
const RAW_STREAM: grpc.ServiceDefinition = {
  stream: {
    path: "/bkv.v1.RaftService/Stream", requestStream: true, responseStream: true,
    requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
  },
};

interface RawStream {
  write(frame: Uint8Array): void;
  /** Resolves on the first response frame (the accept). */
  accepted: Promise<void>;
  /** Resolves with the call's final status. */
  status: Promise<grpc.StatusObject & { error?: grpc.ServiceError }>;
  cancel(): void;
}

/** Opens a raw Stream call to `address` as node `certId` (its certificate). */
function rawStream(address: string, certId: number): RawStream {
  const Client = grpc.makeGenericClientConstructor(RAW_STREAM, "RaftService");
  const tls = loadTls(devCertFiles(certs.dir, certId));
  const client = new Client(address, grpc.credentials.createSsl(tls.ca, tls.key, tls.cert), {
    "grpc.ssl_target_name_override": "node-1", "grpc.default_authority": "node-1",
  });
  const call = (client as unknown as { stream(): grpc.ClientDuplexStream<Buffer, Buffer> }).stream();
  let error: grpc.ServiceError | undefined;
  call.on("error", (e: grpc.ServiceError) => { error = e; });
  const accepted = new Promise<void>((res) => call.once("data", () => res()));
  const status = new Promise<grpc.StatusObject & { error?: grpc.ServiceError }>((res) => {
    call.on("status", (st: grpc.StatusObject) => { client.close(); res({ ...st, ...(error ? { error } : {}) }); });
  });
  return { write: (f) => call.write(Buffer.from(f)), accepted, status, cancel: () => call.cancel() };
}

function header(fields: MessageInitShape<typeof StreamHeaderSchema>): Uint8Array {
  return toBinary(StreamRequestSchema, create(StreamRequestSchema, {
    frame: { case: "header", value: create(StreamHeaderSchema, fields) },
  }));
}

function batch(...messages: Array<MessageInitShape<typeof RaftMessageSchema>>): Uint8Array {
  return toBinary(StreamRequestSchema, create(StreamRequestSchema, {
    frame: { case: "batch", value: create(MessageBatchSchema, { messages: messages.map((m) => create(RaftMessageSchema, m)) }) },
  }));
}

const HB = { type: RaftMessageType.HEARTBEAT, from: 3n, to: 1n, term: 1n };

async function receiver(): Promise<TestNode> {
  const a = makeNode(1, certs.dir);
  running.push(a);
  await a.transport.start();
  return a;
}

test("malformed messages in a batch are dropped and counted; the good ones are delivered", async (t) => {
  const a = await receiver();
  const s = rawStream(a.transport.address!, 3);
  s.write(header({ clusterId: "test-cluster", from: 3n, to: 1n }));
  await s.accepted;
  s.write(batch(
    { ...HB, commit: 1n },
    { ...HB, from: 2n }, // not the stream's sender
    { ...HB, to: 5n }, // not for this node
    { ...HB, type: RaftMessageType.UNSPECIFIED },
    { ...HB, type: RaftMessageType.SNAP }, // no chunk
    { ...HB, term: 1n << 60n },
    { ...HB, commit: 2n },
  ));
  await waitFor(() => a.transport.stats.malformedReceived === 5 && a.received.length === 2, "delivery");
  t.deepEqual(a.received.map((m) => m.commit), [1, 2]);
  s.cancel();
});

test("a frame that does not decode ends that stream only, with INVALID_ARGUMENT; the node keeps serving", async (t) => {
  const a = await receiver();
  const s = rawStream(a.transport.address!, 3);
  s.write(header({ clusterId: "test-cluster", from: 3n, to: 1n }));
  await s.accepted;
  s.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]));
  const st = await s.status;
  t.is(st.code, grpc.status.INVALID_ARGUMENT);
  t.is(a.transport.stats.undecodableFrames, 1);

  const b = makeNode(2, certs.dir);
  running.push(b);
  await b.transport.start();
  b.transport.addPeer(1, a.transport.address!);
  b.transport.send([heartbeat(2, 1, 9)]);
  await waitFor(() => a.received.length === 1, "a healthy peer's message");
  t.is(a.received[0]!.term, 9);
});

test("a stream that does not start with a header is refused", async (t) => {
  const a = await receiver();
  const s = rawStream(a.transport.address!, 3);
  s.write(batch(HB));
  const st = await s.status;
  t.is(st.code, grpc.status.FAILED_PRECONDITION);
  t.is(errorDetailOf(st)?.reason, ErrorReason.MEMBERSHIP);
  t.deepEqual(a.received, []);
});

const refusals: Array<[string, MessageInitShape<typeof StreamHeaderSchema>, grpc.status]> = [
  ["another cluster", { clusterId: "other", from: 3n, to: 1n }, grpc.status.FAILED_PRECONDITION],
  ["another node", { clusterId: "test-cluster", from: 3n, to: 2n }, grpc.status.FAILED_PRECONDITION],
  ["sender 0", { clusterId: "test-cluster", from: 0n, to: 1n }, grpc.status.FAILED_PRECONDITION],
  ["a sender its certificate does not name", { clusterId: "test-cluster", from: 2n, to: 1n }, grpc.status.PERMISSION_DENIED],
];

for (const [name, h, code] of refusals) {
  test(`a header naming ${name} is refused with a clear status`, async (t) => {
    const a = await receiver();
    const s = rawStream(a.transport.address!, 3);
    s.write(header(h));
    s.write(batch(HB));
    const st = await s.status;
    t.is(st.code, code);
    t.true(st.details.length > 0);
    t.is(a.transport.stats.inboundRefused, 1);
    t.deepEqual(a.received, []);
  });
}
