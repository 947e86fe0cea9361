// GetStateDigest over real gRPC and mTLS on loopback: a peer answers its
// digest at an index it remembers, "not available" otherwise, and refuses a
// caller whose certificate names another node before its source is read.
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { type DigestSource, devCertFiles, loadTls } from "../../node/transport/index.js";
import { connectPair, makeCerts, makeNode, type TestNode } from "./helpers.js";

const certs = makeCerts([1, 2, 3]);
test.after.always(() => certs.cleanup());

const D40 = new Uint8Array(32).fill(40);

/** Node 1 remembers index 40 only; counts reads. */
function source(): { source: DigestSource; reads: number[] } {
  const s = { reads: [] as number[], source: null as unknown as DigestSource };
  s.source = (index) => {
    s.reads.push(index);
    return index === 40 ? D40 : undefined;
  };
  return s;
}

async function pair(t: import("ava").ExecutionContext, src: DigestSource, bOverrides = {}): Promise<[TestNode, TestNode]> {
  const a = makeNode(1, certs.dir, { digestSource: src });
  const b = makeNode(2, certs.dir, bOverrides);
  t.teardown(async () => { await a.transport.stop(); await b.transport.stop(); });
  await connectPair(a, b);
  return [a, b];
}

test("a peer answers its digest at an index it remembers, null at one it does not", async (t) => {
  const s = source();
  const [, b] = await pair(t, s.source);
  t.deepEqual(await b.transport.stateDigest(1, 40, 5000), D40);
  t.is(await b.transport.stateDigest(1, 41, 5000), null);
  t.deepEqual(s.reads, [40, 41]);
});

test("a node without a digest source vouches for nothing", async (t) => {
  const [a] = await pair(t, source().source);
  t.is(await a.transport.stateDigest(2, 40, 5000), null);
});

test("a caller whose certificate names another node is refused before the source is read", async (t) => {
  const s = source();
  const [, b] = await pair(t, s.source, { tls: loadTls(devCertFiles(certs.dir, 3)) });
  const err = await t.throwsAsync(b.transport.stateDigest(1, 40, 5000));
  t.is((err as grpc.ServiceError).code, grpc.status.PERMISSION_DENIED);
  t.deepEqual(s.reads, []);
});

test("asking an unknown peer fails without a call", async (t) => {
  const [, b] = await pair(t, source().source);
  await t.throwsAsync(b.transport.stateDigest(7, 40, 5000), { message: /not a known peer/ });
});
