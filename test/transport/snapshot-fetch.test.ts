// FetchSnapshot over real gRPC and mTLS on loopback: the bytes arrive whole
// and in order, the source is closed after a transfer and after a
// cancellation, and a snapshot the callee does not hold or a caller with the
// certificate of another node is refused.
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { type SnapshotSource, devCertFiles, loadTls } from "../../node/transport/index.js";
import { connectPair, makeCerts, makeNode, type TestNode } from "./helpers.js";

const certs = makeCerts([1, 2, 3]);
test.after.always(() => certs.cleanup());

const CHUNK = 64 * 1024;

/** A source holding snapshot (index 50, term 2) of `chunks` chunks; counts opens and closes. */
function source(chunks: number): { source: SnapshotSource; opened: number; closed: number; served: number; askedBy: number[] } {
  const s = { opened: 0, closed: 0, served: 0, askedBy: [] as number[], source: null as unknown as SnapshotSource };
  s.source = (from, index, term) => {
    s.askedBy.push(from);
    if (index !== 50 || term !== 2) return null;
    s.opened++;
    function* gen(): Generator<Uint8Array> {
      for (let i = 0; i < chunks; i++) {
        s.served++;
        yield new Uint8Array(CHUNK).fill(i & 0xff);
      }
    }
    return { chunks: gen(), close: () => void s.closed++ };
  };
  return s;
}

async function pair(t: import("ava").ExecutionContext, src: SnapshotSource, bOverrides = {}): Promise<[TestNode, TestNode]> {
  const a = makeNode(1, certs.dir, { snapshotSource: src });
  const b = makeNode(2, certs.dir, bOverrides);
  t.teardown(async () => { await a.transport.stop(); await b.transport.stop(); });
  await connectPair(a, b);
  return [a, b];
}

test("a follower downloads a snapshot's chunks whole and in order; the source is closed after", async (t) => {
  const s = source(300);
  const [, b] = await pair(t, s.source);
  let n = 0;
  for await (const chunk of b.transport.fetchSnapshot(1, 50, 2)) {
    if (chunk.length !== CHUNK || chunk[0] !== (n & 0xff) || chunk[CHUNK - 1] !== (n & 0xff)) t.fail(`chunk ${n} wrong`);
    n++;
  }
  t.is(n, 300);
  t.is(s.opened, 1);
  t.is(s.closed, 1);
  t.deepEqual(s.askedBy, [2], "the source learns which node fetches (the authenticated header's from)");
});

test("a snapshot the callee does not hold is FAILED_PRECONDITION", async (t) => {
  const s = source(3);
  const [, b] = await pair(t, s.source);
  const err = await t.throwsAsync(async () => { for await (const _ of b.transport.fetchSnapshot(1, 49, 2)) t.fail("no chunk expected"); });
  t.is((err as grpc.ServiceError).code, grpc.status.FAILED_PRECONDITION);
  t.regex(err!.message, /does not hold snapshot 49/);
  t.is(s.opened, 0);
});

test("a caller whose certificate names another node is refused before the source opens", async (t) => {
  const s = source(3);
  // Node 2 dials with node 3's certificate: node 1 expects "node-2" for a header from 2.
  const [, b] = await pair(t, s.source, { tls: loadTls(devCertFiles(certs.dir, 3)) });
  const err = await t.throwsAsync(async () => { for await (const _ of b.transport.fetchSnapshot(1, 50, 2)) t.fail("no chunk expected"); });
  t.is((err as grpc.ServiceError).code, grpc.status.PERMISSION_DENIED);
  t.is(s.opened, 0);
});

test("a cancelled download stops reading the source and closes it", async (t) => {
  const s = source(100_000);
  const [, b] = await pair(t, s.source);
  const abort = new AbortController();
  let n = 0;
  await t.throwsAsync(async () => {
    for await (const _ of b.transport.fetchSnapshot(1, 50, 2, abort.signal)) if (++n === 20) abort.abort();
  });
  const deadline = Date.now() + 10_000;
  while (s.closed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.is(s.closed, 1);
  t.true(s.served < 2000, `served ${s.served} chunks after a cancel at 20: backpressure or cancellation is missing`);
});

test("the sender runs ahead of a reader that waits, by the fetching node's flow-control window, not one chunk", async (t) => {
  const s = source(1000);
  const [, b] = await pair(t, s.source);
  const chunks = b.transport.fetchSnapshot(1, 50, 2)[Symbol.asyncIterator]();
  await chunks.next(); // the call is open; nothing more is read for now
  let seen = -1;
  for (let stable = 0; stable < 5; await new Promise((r) => setTimeout(r, 100))) stable = s.served === seen ? stable + 1 : ((seen = s.served), 0);
  // PEER_FLOW_WINDOW_BYTES (8 MiB) is 128 chunks of 64 KiB; at HTTP/2's default 64 KiB window the sender stopped after ~20.
  t.true(s.served >= 100, `the sender stopped after ${s.served} chunks: the transfer is stop-and-wait`);
  t.true(s.served < 400, `the sender ran ${s.served} chunks ahead: nothing bounds what a reader buffers`);
  await chunks.return?.(undefined);
});
