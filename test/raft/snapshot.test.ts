// Log compaction and InstallSnapshot in chunks (Raft §7).
import test from "ava";
import { ConfChangeType, ErrSnapshotTemporarilyUnavailable } from "../../node/raft/index.js";
import { MessageType, Network, enc } from "./network.js";

const CHUNK = 64;

function compactedCluster(): Network {
  const net = new Network([1, 2, 3], { maxSnapshotChunkBytes: CHUNK });
  net.elect(1);
  for (let i = 0; i < 20; i++) net.propose(1, `value-${i}`);
  net.tick(2);
  for (const id of [1, 2, 3]) net.compact(id);
  return net;
}

function joinLearner(net: Network, id: number): void {
  net.addNode(id, undefined, 1, { maxSnapshotChunkBytes: CHUNK });
  net.node(1).raw.proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: id, context: enc("") });
  net.settle();
}

test("a node that needs compacted entries gets the snapshot in ordered chunks and then the log", (t) => {
  const net = compactedCluster();
  const snap = net.node(1).storage.snapshot();
  const chunks = Math.ceil(snap.data.byteLength / CHUNK);
  t.true(chunks >= 5, `snapshot of ${snap.data.byteLength} bytes`);
  joinLearner(net, 4);
  net.tick(3);
  const snaps = net.delivered.filter((m) => m.type === MessageType.Snap && m.to === 4);
  t.is(snaps.length, chunks);
  t.deepEqual(snaps.map((m) => m.snapshot!.offset), Array.from({ length: chunks }, (_, i) => i * CHUNK));
  t.deepEqual(snaps.map((m) => m.snapshot!.done), Array.from({ length: chunks }, (_, i) => i === chunks - 1));
  t.is(net.node(4).snapshotsApplied, 1);
  t.deepEqual(net.appliedText(4), net.appliedText(1));
  t.is(net.node(4).storage.firstIndex(), snap.metadata.index + 1);
  t.deepEqual(net.status(4).confState.learners, [4]);
  net.propose(1, "after");
  t.is(net.appliedText(4).at(-1), "after");
  const applied = net.node(4).appliedIndexes;
  t.true(applied.every((i) => i > snap.metadata.index), "no entry covered by the snapshot is applied again");
});

test("a lost chunk is detected (gap) and the leader resumes from the follower's byte count", (t) => {
  const net = compactedCluster();
  let dropped = 0;
  net.filters.push((m) => {
    if (m.type === MessageType.Snap && m.snapshot!.offset === 2 * CHUNK && dropped === 0) {
      dropped++;
      return true;
    }
    return false;
  });
  joinLearner(net, 4);
  net.tick(3);
  t.is(dropped, 1);
  const rejects = net.delivered.filter((m) => m.type === MessageType.SnapResp && m.from === 4 && m.reject);
  t.true(rejects.length >= 1);
  t.is(rejects[0]!.index, 2 * CHUNK, "the follower asks to resume at the missing offset");
  const resent = net.delivered.filter((m) => m.type === MessageType.Snap && m.to === 4 && m.snapshot!.offset === 0);
  t.is(resent.length, 1, "no restart from zero");
  t.is(net.node(4).snapshotsApplied, 1);
  t.deepEqual(net.appliedText(4), net.appliedText(1));
});

test("when the tail chunks are lost the leader's heartbeat timer resends from the last ack", (t) => {
  const net = compactedCluster();
  let dropping = true;
  net.filters.push((m) => dropping && m.type === MessageType.Snap && m.snapshot!.offset >= 3 * CHUNK);
  joinLearner(net, 4);
  net.tick(1);
  t.is(net.node(4).snapshotsApplied, 0);
  dropping = false;
  net.tick(3);
  t.is(net.node(4).snapshotsApplied, 1);
  t.deepEqual(net.appliedText(4), net.appliedText(1));
});

test("a follower restarting mid-transfer asks for a restart and the transfer completes", (t) => {
  const net = compactedCluster();
  let stop = true;
  net.filters.push((m) => stop && m.type === MessageType.Snap && m.snapshot!.offset >= 3 * CHUNK);
  joinLearner(net, 4);
  net.tick(1);
  t.true(net.delivered.some((m) => m.type === MessageType.SnapResp && m.from === 4 && m.index === 3 * CHUNK));
  t.is(net.node(4).snapshotsApplied, 0);
  net.restart(4); // loses the chunks held in memory
  stop = false;
  net.tick(4);
  const restarts = net.delivered.filter((m) => m.type === MessageType.SnapResp && m.from === 4 && m.reject && m.index === 0);
  t.true(restarts.length >= 1);
  t.is(net.node(4).snapshotsApplied, 1);
  t.deepEqual(net.appliedText(4), net.appliedText(1));
});

test("reportSnapshot(id, false) makes the leader start the transfer over", (t) => {
  const net = compactedCluster();
  net.filters.push((m) => m.type === MessageType.Snap);
  joinLearner(net, 4);
  const sentBefore = net.delivered.length;
  net.node(1).raw.reportSnapshot(4, false);
  net.filters = [];
  net.tick(3);
  const offsets = net.delivered.slice(sentBefore).filter((m) => m.type === MessageType.Snap && m.to === 4).map((m) => m.snapshot!.offset);
  t.is(offsets[0], 0);
  t.is(net.node(4).snapshotsApplied, 1);
});

test("a lagging voter behind the compaction point is restored by snapshot, not by entries it cannot get", (t) => {
  const net = new Network([1, 2, 3], { maxSnapshotChunkBytes: CHUNK });
  net.elect(1);
  net.isolate(3);
  for (let i = 0; i < 10; i++) net.propose(1, `v${i}`);
  net.compact(1);
  net.compact(2);
  net.heal();
  net.tick(3);
  t.is(net.node(3).snapshotsApplied, 1);
  t.deepEqual(net.appliedText(3), net.appliedText(1));
  t.is(net.status(3).hardState.commit, net.status(1).hardState.commit);
});

test("a snapshot temporarily unavailable is not sent; the leader sends it at a later chance once storage has it", (t) => {
  const net = compactedCluster();
  const storage = net.node(1).storage;
  const real = storage.snapshot.bind(storage);
  let available = false;
  let asked = 0;
  storage.snapshot = () => {
    asked++;
    if (!available) throw new ErrSnapshotTemporarilyUnavailable("preparing");
    return real();
  };
  joinLearner(net, 4);
  net.tick(3);
  t.true(asked > 0, "the leader asked its storage for the snapshot");
  t.is(net.delivered.filter((m) => m.type === MessageType.Snap && m.to === 4).length, 0);
  t.is(net.node(4).snapshotsApplied, 0);
  t.is(net.node(1).raw.status().softState.lead, 1, "the leader is unharmed");
  available = true;
  net.tick(3);
  t.is(net.node(4).snapshotsApplied, 1);
  t.deepEqual(net.appliedText(4), net.appliedText(1));
});
