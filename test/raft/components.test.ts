// Focused tests of the building blocks: inflights, progress, unstable log,
// raft log conflict search, chunked snapshot sender and receiver, quorum.
import test from "ava";
import { Inflights } from "../../node/raft/inflights.js";
import { RaftLog } from "../../node/raft/log.js";
import { Progress, ProgressState } from "../../node/raft/progress.js";
import { SnapshotReceiver } from "../../node/raft/snapshot-recv.js";
import { SnapshotSender, WINDOW_CHUNKS } from "../../node/raft/snapshot-send.js";
import { ProgressTracker, VoteResult } from "../../node/raft/tracker.js";
import { type Entry, EntryType, MemoryStorage, RaftPanic, type Snapshot } from "../../node/raft/index.js";

const ent = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array(4) });

test("inflights: full by count or by bytes; freeLE releases in order", (t) => {
  const f = new Inflights(3, 100);
  f.add(1, 10);
  f.add(2, 10);
  t.false(f.full());
  f.add(5, 10);
  t.true(f.full());
  f.freeLE(2);
  t.is(f.count(), 1);
  t.is(f.inflightBytes(), 10);
  f.add(6, 95);
  t.true(f.full(), "bytes limit");
  t.throws(() => f.add(7, 1), { instanceOf: RaftPanic });
  f.freeFirstOne();
  t.is(f.count(), 1);
  t.throws(() => f.add(3, 1), { instanceOf: RaftPanic, message: /not above/ });
});

test("progress: probe pauses after one send, replicate pipelines, stale rejections are ignored", (t) => {
  const pr = new Progress(11, 2, 0, false);
  t.is(pr.state, ProgressState.Probe);
  t.false(pr.isPaused());
  pr.probeSent = true;
  t.true(pr.isPaused());
  t.false(pr.maybeDecrTo(5, 3), "rejection of an index we did not send");
  t.true(pr.maybeDecrTo(10, 3));
  t.is(pr.next, 4);
  t.true(pr.maybeUpdate(6));
  pr.becomeReplicate();
  t.is(pr.next, 7);
  t.false(pr.maybeDecrTo(6, 0), "rejection at or below match is stale");
  t.true(pr.maybeDecrTo(9, 0));
  t.is(pr.next, 7);
});

test("raft log: findConflict and findConflictByTerm", (t) => {
  const s = new MemoryStorage();
  s.append([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 4)]);
  const log = new RaftLog(s);
  t.is(log.findConflict([ent(3, 2), ent(4, 2)]), 0);
  t.is(log.findConflict([ent(4, 2), ent(5, 5)]), 5);
  t.is(log.findConflict([ent(5, 4), ent(6, 4)]), 6);
  t.deepEqual(log.findConflictByTerm(5, 3), { index: 4, term: 2 });
  t.deepEqual(log.findConflictByTerm(5, 1), { index: 2, term: 1 });
  t.deepEqual(log.findConflictByTerm(5, 4), { index: 5, term: 4 });
  t.true(log.isUpToDate(5, 4));
  t.false(log.isUpToDate(9, 3));
  t.true(log.isUpToDate(1, 5));
});

test("raft log: committed entries are never replaced and commit never passes the last index", (t) => {
  const s = new MemoryStorage();
  s.append([ent(1, 1), ent(2, 1), ent(3, 1)]);
  const log = new RaftLog(s);
  log.commitTo(2);
  t.is(log.maybeAppend(1, 1, 3, [ent(2, 9), ent(3, 9)]), "refused");
  t.is(log.term(2), 1);
  t.throws(() => log.append([ent(2, 9)]), { instanceOf: RaftPanic });
  t.throws(() => log.commitTo(7), { instanceOf: RaftPanic });
  t.is(log.maybeAppend(2, 1, 9, [ent(3, 2), ent(4, 2)]), 4);
  t.is(log.committed, 4, "commit = min(leader commit, last new entry)");
  t.is(log.term(3), 2);
});

test("raft log: maybeCommit only commits an entry of the given term", (t) => {
  const s = new MemoryStorage();
  s.append([ent(1, 1), ent(2, 2), ent(3, 3)]);
  const log = new RaftLog(s);
  t.false(log.maybeCommit(2, 3));
  t.is(log.committed, 0);
  t.true(log.maybeCommit(3, 3));
  t.is(log.committed, 3);
});

function snap(size: number): Snapshot {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = i % 251;
  return { metadata: { index: 10, term: 2, confState: { voters: [1, 2], learners: [] } }, data };
}

test("snapshot sender/receiver: in-order chunks reassemble the exact bytes", (t) => {
  const s = snap(1000);
  const tx = new SnapshotSender(s, 100);
  const rx = new SnapshotReceiver();
  let done: Snapshot | null = null;
  for (let round = 0; round < 20 && done === null; round++) {
    for (const c of tx.nextChunks()) {
      const out = rx.receive(1, 5, c);
      if (out.kind === "ack") tx.onAck(out.received);
      if (out.kind === "complete") done = out.snapshot;
    }
  }
  t.deepEqual(done?.data, s.data);
  t.deepEqual(done?.metadata, s.metadata);
});

test("snapshot sender: at most WINDOW_CHUNKS unacknowledged; gap rejection and stall rewind", (t) => {
  const tx = new SnapshotSender(snap(1000), 100);
  const first = tx.nextChunks();
  t.is(first.length, WINDOW_CHUNKS);
  t.deepEqual(tx.nextChunks(), []);
  tx.onAck(200);
  t.deepEqual(tx.nextChunks().map((c) => c.offset), [400, 500]);
  tx.onReject(200); // the follower lost the chunk at 200
  t.deepEqual(tx.nextChunks().map((c) => c.offset), [200, 300, 400, 500]);
  t.false(tx.onHeartbeat(), "progress was made in this interval");
  t.true(tx.onHeartbeat(), "no ack for a whole interval: rewind");
  t.deepEqual(tx.nextChunks()[0]!.offset, 200);
});

test("snapshot receiver: gaps, strangers and bad sizes are rejected; duplicates re-acked", (t) => {
  const s = snap(300);
  const chunks = new SnapshotSender(s, 100).nextChunks();
  const rx = new SnapshotReceiver();
  t.deepEqual(rx.receive(1, 5, chunks[1]!), { kind: "reject", received: 0 }, "no transfer started");
  t.deepEqual(rx.receive(1, 5, chunks[0]!), { kind: "ack", received: 100 });
  t.deepEqual(rx.receive(1, 5, chunks[0]!), { kind: "ack", received: 100 }, "duplicate");
  t.deepEqual(rx.receive(1, 5, chunks[2]!), { kind: "reject", received: 100 }, "gap");
  t.deepEqual(rx.receive(2, 5, chunks[1]!), { kind: "reject", received: 0 }, "another leader");
  t.deepEqual(rx.receive(1, 6, chunks[1]!), { kind: "reject", received: 0 }, "another term");
  const lying = { ...chunks[1]!, data: new Uint8Array(250) };
  t.deepEqual(rx.receive(1, 5, lying), { kind: "reject", received: 0 }, "more bytes than totalSize");
});

test("snapshot receiver: a follower that lost its transfer answers every gap with what it holds (sim seed 673)", (t) => {
  const chunks = new SnapshotSender(snap(600), 100).nextChunks();
  const rx = new SnapshotReceiver();
  // A restarted follower holds 0 bytes while the leader resends from 200: it must keep saying so.
  for (let i = 0; i < 3; i++) t.deepEqual(rx.receive(1, 5, chunks[2]!), { kind: "reject", received: 0 });
});

test("snapshot sender: repeated rejections for one position resend one window (sim seed 2007)", (t) => {
  const tx = new SnapshotSender(snap(1000), 100);
  tx.nextChunks();
  tx.onAck(100);
  tx.nextChunks();
  tx.onReject(100);
  t.deepEqual(tx.nextChunks().map((c) => c.offset), [100, 200, 300, 400]);
  for (let i = 0; i < 5; i++) tx.onReject(100);
  t.deepEqual(tx.nextChunks(), [], "the window already in flight is not resent per rejection");
  tx.onAck(200);
  tx.onReject(200);
  t.deepEqual(tx.nextChunks().map((c) => c.offset), [200, 300, 400, 500], "a rejection at a new position rewinds");
  t.true(tx.onHeartbeat() === false && tx.onHeartbeat(), "a stalled resend is still repeated by the heartbeat");
  tx.nextChunks();
  tx.onAck(400);
  tx.onReject(0);
  t.deepEqual(tx.nextChunks().map((c) => c.offset), [0, 100, 200, 300], "a follower whose count went back (restart) is heard");
});

test("tracker: quorum commit index over voters only; vote tally", (t) => {
  const tr = new ProgressTracker(10, 0);
  tr.applyConfState({ voters: [1, 2, 3], learners: [4] }, 1);
  const set = (id: number, m: number) => { tr.progress.get(id)!.match = m; };
  set(1, 10); set(2, 7); set(3, 3); set(4, 100);
  t.is(tr.committed(), 7);
  tr.recordVote(4, true); // learner: ignored
  tr.recordVote(1, true);
  t.is(tr.tallyVotes().result, VoteResult.Pending);
  tr.recordVote(2, false);
  tr.recordVote(2, true); // first vote counts
  t.is(tr.tallyVotes().result, VoteResult.Pending);
  tr.recordVote(3, false);
  t.is(tr.tallyVotes().result, VoteResult.Lost);
  t.throws(() => tr.applyConfState({ voters: [1], learners: [1] }, 1), { instanceOf: RaftPanic });
});
