// Two or three Transports on 127.0.0.1 with real mTLS certificates.

import test from "ava";
import { MessageType, message, type NodeId } from "../../node/raft/types.js";
import { devCertFiles, loadTls, MAX_MESSAGE_BYTES } from "../../node/transport/index.js";
import {
  connectPair, everyWireMessage, FAST_BACKOFF, heartbeat, makeCerts, makeNode, waitFor, type TestNode,
} from "./helpers.js";

let certs: ReturnType<typeof makeCerts>;
const running: TestNode[] = [];

test.before(() => {
  certs = makeCerts([1, 2, 3]);
});

test.after.always(async () => {
  await Promise.all(running.map((n) => n.transport.stop()));
  certs.cleanup();
});

function node(id: NodeId, overrides: Parameters<typeof makeNode>[2] = {}): TestNode {
  const n = makeNode(id, certs.dir, overrides);
  running.push(n);
  return n;
}

test("every raft message type crosses the wire intact, both ways", async (t) => {
  const a = node(1);
  const b = node(2);
  await connectPair(a, b);
  const ab = everyWireMessage(1, 2);
  const ba = everyWireMessage(2, 1);
  a.transport.send(ab);
  b.transport.send(ba);
  await waitFor(() => b.received.length === ab.length && a.received.length === ba.length, "delivery");
  t.deepEqual(b.received, ab);
  t.deepEqual(a.received, ba);
  t.is(a.transport.stats.malformedReceived + b.transport.stats.malformedReceived, 0);
  await waitFor(() => a.snapshots.length > 0 && b.snapshots.length > 0, "snapshot reports");
  t.deepEqual(a.snapshots, [[2, true]], "the done chunk reports the snapshot as sent");
  t.deepEqual(b.snapshots, [[1, true]]);
});

test("sends made in one event-loop turn leave in one batch write", async (t) => {
  const a = node(1);
  const b = node(2);
  await connectPair(a, b);
  a.transport.send([heartbeat(1, 2)]);
  await waitFor(() => b.received.length === 1 && a.transport.peerState(2) === "open", "stream open");
  const writesBefore = a.transport.stats.writes;
  for (let i = 1; i <= 300; i++) a.transport.send([heartbeat(1, 2, 1, i)]);
  await waitFor(() => b.received.length === 301, "300 messages");
  t.is(a.transport.stats.writes - writesBefore, 1);
  t.is(b.transport.stats.batchesReceived, 2);
  t.deepEqual(b.received.slice(1).map((m) => m.commit), Array.from({ length: 300 }, (_, i) => i + 1), "in order");
});

test("a batch larger than maxBatchBytes is split into several writes", async (t) => {
  const a = node(1, { maxBatchBytes: 10_000 });
  const b = node(2);
  await connectPair(a, b);
  const entries = [{ term: 1, index: 1, type: 0, data: new Uint8Array(3000) }];
  const big = Array.from({ length: 10 }, (_, i) => message({ type: MessageType.App, from: 1, to: 2, index: i, entries }));
  a.transport.send(big);
  await waitFor(() => b.received.length === 10, "10 messages");
  t.true(a.transport.stats.writes >= 4, `writes = ${a.transport.stats.writes}`);
  t.deepEqual(b.received.map((m) => m.index), big.map((m) => m.index));
});

test("a peer that goes down is reported unreachable, and traffic resumes when it returns", async (t) => {
  const a = node(1);
  let b = node(2);
  await connectPair(a, b);
  const addrB = b.transport.address!;
  a.transport.send([heartbeat(1, 2)]);
  await waitFor(() => b.received.length === 1, "first delivery");
  t.deepEqual(a.unreachable, []);

  await b.transport.stop();
  const sendUntil = async (cond: () => boolean, what: string) => {
    await waitFor(() => { a.transport.send([heartbeat(1, 2, 2)]); return cond(); }, what);
  };
  await sendUntil(() => a.unreachable.includes(2), "unreachable report");
  await sendUntil(() => a.transport.stats.connectFailures >= 2, "failed reconnects with backoff");
  t.true(a.transport.stats.droppedPeerDown > 0);

  b = node(2, { listenAddress: addrB });
  await b.transport.start();
  await sendUntil(() => b.received.length > 0, "delivery after reconnect");
  t.is(a.transport.peerState(2), "open");
  t.true(a.transport.stats.streamsOpened >= 2);
  t.is(b.received[0]!.term, 2);
});

test("a peer that comes back and opens a stream to us is reconnected at once, not after our backoff", async (t) => {
  const HOUR = 3_600_000;
  const a = node(1, { backoff: { initialMs: HOUR, maxMs: HOUR, multiplier: 1 } });
  let b = node(2);
  await connectPair(a, b);
  const addrB = b.transport.address!;
  a.transport.send([heartbeat(1, 2)]);
  await waitFor(() => b.received.length === 1, "first delivery");

  await b.transport.stop();
  await waitFor(() => { a.transport.send([heartbeat(1, 2)]); return a.transport.peerState(2) === "backoff"; }, "a backs off (an hour)");

  b = node(2, { listenAddress: addrB });
  await b.transport.start();
  b.transport.addPeer(1, a.transport.address!);
  b.transport.send([heartbeat(2, 1, 3)]); // b's stream to a: a learns that b is up
  await waitFor(() => a.received.some((m) => m.term === 3), "b's stream to a");
  await waitFor(() => { a.transport.send([heartbeat(1, 2, 4)]); return b.received.length > 0; }, "a's stream to b again", 30_000);
  t.is(a.transport.peerState(2), "open");
  t.is(b.received[0]!.term, 4);
});

test("a full per-peer queue drops messages and reports the peer unreachable", async (t) => {
  const a = node(1, { queueCapacity: 10 });
  await a.transport.start();
  a.transport.addPeer(2, "127.0.0.1:9"); // nothing listens there
  for (let i = 0; i < 100; i++) a.transport.send([heartbeat(1, 2)]);
  t.is(a.transport.stats.droppedQueueFull, 90);
  t.deepEqual(a.unreachable, [], "reports come from a later turn, not from inside send()");
  await waitFor(() => a.unreachable.length > 0, "unreachable report");
  t.is(a.unreachable[0], 2);
});

test("a snapshot chunk that cannot be delivered is reported as a failed snapshot", async (t) => {
  const a = node(1, { connectTimeoutMs: 500 });
  await a.transport.start();
  a.transport.addPeer(2, "127.0.0.1:9");
  const snap = everyWireMessage(1, 2).filter((m) => m.type === MessageType.Snap);
  a.transport.send(snap);
  await waitFor(() => a.snapshots.length > 0, "snapshot report");
  t.deepEqual(a.snapshots[0], [2, false]);
});

test("messages to unknown or removed peers, and local or forged messages, are dropped without throwing", async (t) => {
  const a = node(1);
  const b = node(2);
  await connectPair(a, b);
  a.transport.send([heartbeat(1, 3)]);
  t.is(a.transport.stats.droppedUnknownPeer, 1);
  const huge = message({ type: MessageType.Prop, from: 1, to: 2, entries: [{ term: 0, index: 0, type: 0, data: new Uint8Array(MAX_MESSAGE_BYTES) }] });
  a.transport.send([message({ type: MessageType.Hup, from: 1, to: 2 }), heartbeat(3, 2), heartbeat(1, 2, -1), huge]);
  t.is(a.transport.stats.droppedInvalid, 4);
  a.transport.send([heartbeat(1, 2, 7)]);
  await waitFor(() => b.received.length === 1, "the valid message");
  t.is(b.received[0]!.term, 7);
  a.transport.removePeer(2);
  a.transport.send([heartbeat(1, 2)]);
  t.is(a.transport.stats.droppedUnknownPeer, 2);
  t.is(a.transport.peerState(2), undefined);
});

test("a client whose certificate comes from another CA is refused", async (t) => {
  const other = makeCerts([3]);
  t.teardown(other.cleanup);
  const a = node(1);
  await a.transport.start();
  const ourCa = loadTls(devCertFiles(certs.dir, 1)).ca;
  const foreign = loadTls(devCertFiles(other.dir, 3));
  const rogue = node(3, { tls: { ...foreign, ca: ourCa } }); // trusts us, but we do not trust it
  await rogue.transport.start();
  rogue.transport.addPeer(1, a.transport.address!);
  await waitFor(() => { rogue.transport.send([heartbeat(3, 1)]); return rogue.transport.stats.connectFailures >= 2; }, "refusals");
  t.true(rogue.unreachable.includes(1));
  t.deepEqual(a.received, []);
  t.is(a.transport.stats.inboundAccepted, 0);
});

test("a peer configured with another cluster id is refused", async (t) => {
  const a = node(1);
  const rogue = node(3, { clusterId: "another-cluster" });
  await Promise.all([a.transport.start(), rogue.transport.start()]);
  rogue.transport.addPeer(1, a.transport.address!);
  await waitFor(() => { rogue.transport.send([heartbeat(3, 1)]); return a.transport.stats.inboundRefused >= 2; }, "refusals");
  t.true(rogue.unreachable.includes(1));
  t.deepEqual(a.received, []);
  t.is(a.transport.stats.inboundAccepted, 0);
  t.is(rogue.transport.stats.streamsOpened, 0);
});

test("a node cannot claim another node's id: the header must match its certificate", async (t) => {
  const a = node(1);
  const liar = node(2, { tls: loadTls(devCertFiles(certs.dir, 3)) }); // says 2, holds node-3's cert
  await Promise.all([a.transport.start(), liar.transport.start()]);
  liar.transport.addPeer(1, a.transport.address!);
  await waitFor(() => { liar.transport.send([heartbeat(2, 1)]); return a.transport.stats.inboundRefused >= 2; }, "refusals");
  t.deepEqual(a.received, []);
});

test("a dialer refuses a server whose certificate names another node", async (t) => {
  const a = node(1);
  const b = node(2);
  await connectPair(a, b);
  a.transport.addPeer(3, b.transport.address!); // node 2 answers at the address we think is node 3
  await waitFor(() => { a.transport.send([heartbeat(1, 3)]); return a.unreachable.includes(3); }, "refusal");
  t.is(b.transport.stats.inboundAccepted, 0, "the TLS handshake failed before any stream");
  t.deepEqual(b.received, []);
  t.not(a.transport.peerState(3), "open");
});

test("re-adding a peer with a new address moves its stream there", async (t) => {
  const a = node(1, { connectTimeoutMs: 500 });
  const b = node(2);
  await connectPair(a, b);
  const right = b.transport.address!;
  a.transport.addPeer(2, "127.0.0.1:9");
  await waitFor(() => { a.transport.send([heartbeat(1, 2)]); return a.unreachable.includes(2); }, "failure at the wrong address");
  a.transport.addPeer(2, right);
  await waitFor(() => { a.transport.send([heartbeat(1, 2, 5)]); return b.received.length > 0; }, "delivery at the new address");
  t.is(b.received[0]!.term, 5);
});

test("bad options are refused at construction", (t) => {
  t.throws(() => node(1, { backoff: { ...FAST_BACKOFF, initialMs: 0 } }), { instanceOf: RangeError });
  t.throws(() => node(0, { tls: loadTls(devCertFiles(certs.dir, 1)) }), { instanceOf: RangeError });
  t.throws(() => node(1, { clusterId: "" }), { instanceOf: RangeError });
});
