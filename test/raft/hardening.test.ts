// Hardening beyond crash-fault Raft: refusal to truncate committed entries,
// exactly-once delivery of committed entries, invariant checks, bad input.
import test from "ava";
import {
  EntryType, ErrInvalidMessage, MemoryStorage, RaftPanic, RawNode, bootstrapSnapshot, message,
} from "../../node/raft/index.js";
import { MessageType, Network, enc, mulberry32 } from "./network.js";

function committedCluster(): Network {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  for (const x of ["a", "b", "c"]) net.propose(1, x);
  net.tick(2);
  return net;
}

test("a follower refuses (and counts) an append that would replace committed entries", (t) => {
  const net = committedCluster();
  const f = net.node(2);
  const commit = f.raw.status().hardState.commit;
  const term = f.raw.status().hardState.term;
  const before = f.storage.entries(f.storage.firstIndex(), f.storage.lastIndex() + 1, Infinity);
  // A (faulty) leader of a later term whose log disagrees with our committed entries.
  const evil = message({
    type: MessageType.App, from: 1, to: 2, term: term + 5, index: commit - 2, logTerm: f.storage.term(commit - 2),
    entries: [{ term: term + 5, index: commit - 1, type: EntryType.Normal, data: enc("overwrite") }],
    commit,
  });
  f.raw.step(evil);
  const rd = f.raw.ready();
  t.deepEqual(rd.entries, []);
  t.deepEqual(rd.messages.filter((m) => m.type === MessageType.AppResp), [], "no acknowledgement");
  f.raw.advance(rd);
  t.is(f.raw.status().refusedTruncations, 1);
  t.deepEqual(f.storage.entries(f.storage.firstIndex(), f.storage.lastIndex() + 1, Infinity), before);
  t.is(f.raw.status().hardState.commit, commit);
});

test("a follower also refuses a mismatched previous entry at or below its commit index", (t) => {
  const net = committedCluster();
  const f = net.node(2);
  const { commit, term } = f.raw.status().hardState;
  f.raw.step(message({
    type: MessageType.App, from: 1, to: 2, term: term + 3, index: commit - 1, logTerm: term + 3,
    entries: [{ term: term + 3, index: commit, type: EntryType.Normal, data: enc("x") }], commit,
  }));
  t.is(f.raw.status().refusedTruncations, 1);
});

test("a stale but consistent MsgApp below the commit index is acknowledged, not counted as refused", (t) => {
  const net = committedCluster();
  const f = net.node(2);
  const { commit, term } = f.raw.status().hardState;
  const entries = f.storage.entries(commit - 1, commit + 1, Infinity);
  f.raw.step(message({
    type: MessageType.App, from: 1, to: 2, term, index: commit - 2, logTerm: f.storage.term(commit - 2), entries, commit,
  }));
  const rd = f.raw.ready();
  t.is(f.raw.status().refusedTruncations, 0);
  const resp = rd.messages.find((m) => m.type === MessageType.AppResp);
  t.is(resp?.index, commit);
  t.false(resp?.reject);
  f.raw.advance(rd);
});

test("committed entries are handed out once even if ready() is called again before advance()", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  const leader = net.node(1);
  leader.raw.propose(enc("x"));
  const rd0 = leader.raw.ready(); // holds the new entry; not advanced yet
  leader.storage.append(rd0.entries);
  for (const m of rd0.messages) net.deliver(m);
  for (const m of net.takeMessagesExcept(1)) net.deliver(m); // the followers' acks: "x" commits
  const rd1 = leader.raw.ready();
  const rd2 = leader.raw.ready();
  t.deepEqual(rd1.committedEntries.map((e) => new TextDecoder().decode(e.data)), ["x"]);
  t.deepEqual(rd2.committedEntries, [], "not handed out twice");
  t.deepEqual(rd1.entries, [], "the entry was already handed out in rd0");
  t.is(rd2.hardState, null);
  t.is(rd2.messages.length, 0);
  for (const rd of [rd0, rd1, rd2]) leader.raw.advance(rd);
  t.false(leader.raw.hasReady() && leader.raw.ready().committedEntries.length > 0);
  t.is(leader.raw.status().applied, rd1.committedEntries[0]!.index);
});

test("advance() with entries that were never committed is a broken invariant: RaftPanic", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  const raw = net.node(2).raw;
  const rd = raw.ready();
  const fake = { ...rd, committedEntries: [{ term: 1, index: 999, type: EntryType.Normal, data: enc("") }] };
  t.throws(() => raw.advance(fake), { instanceOf: RaftPanic });
});

test("step() refuses local message types, misaddressed and malformed messages with ErrInvalidMessage", (t) => {
  const net = new Network([1, 2, 3]);
  const raw = net.node(1).raw;
  for (const type of [MessageType.Hup, MessageType.Beat, MessageType.CheckQuorum, MessageType.SnapStatus, MessageType.Unreachable]) {
    t.throws(() => raw.step(message({ type, from: 2, to: 1 })), { instanceOf: ErrInvalidMessage });
  }
  t.throws(() => raw.step(message({ type: MessageType.Heartbeat, from: 2, to: 3, term: 1 })), { instanceOf: ErrInvalidMessage });
  t.throws(() => raw.step(message({ type: MessageType.Heartbeat, from: 0, to: 1, term: 1 })), { instanceOf: ErrInvalidMessage });
  t.throws(() => raw.step(message({
    type: MessageType.App, from: 2, to: 1, term: 1, index: 1,
    entries: [{ term: 1, index: 5, type: EntryType.Normal, data: enc("") }],
  })), { instanceOf: ErrInvalidMessage });
  t.throws(() => raw.step(message({ type: 99 as MessageType, from: 2, to: 1 })), { instanceOf: ErrInvalidMessage });
  t.throws(() => raw.step(message({
    type: MessageType.App, from: 2, to: 1, term: 1, index: 1,
    entries: [{ term: 7, index: 2, type: EntryType.Normal, data: enc("") }],
  })), { instanceOf: ErrInvalidMessage }, "entry from a term after the message's");
  t.throws(() => raw.step(message({ type: MessageType.Heartbeat, from: 2, to: 1, term: 1, commit: -1 })), { instanceOf: ErrInvalidMessage });
  const chunk = {
    metadata: { index: 5, term: 1, confState: { voters: [1, 2], learners: [2] } }, totalSize: 3, offset: 0,
    data: new Uint8Array(3), done: true,
  };
  t.throws(() => raw.step(message({ type: MessageType.Snap, from: 2, to: 1, term: 1, snapshot: chunk })), { instanceOf: ErrInvalidMessage });
  t.throws(() => raw.step(message({
    type: MessageType.Snap, from: 2, to: 1, term: 1,
    snapshot: { ...chunk, metadata: { ...chunk.metadata, confState: { voters: [1], learners: [] } }, totalSize: 2 },
  })), { instanceOf: ErrInvalidMessage });
  t.is(raw.status().hardState.term, 0, "nothing was applied");
});

test("a restarted node keeps term, vote and log, and re-applies only entries after its snapshot", (t) => {
  const net = committedCluster();
  net.compact(2);
  const before = net.status(2);
  net.propose(1, "d");
  const n = net.restart(2);
  const after = n.raw.status();
  t.is(after.hardState.term, before.hardState.term);
  t.is(after.hardState.vote, before.hardState.vote);
  t.true(after.hardState.commit >= before.hardState.commit);
  net.settle();
  net.tick(2);
  t.deepEqual(net.appliedText(2), ["a", "b", "c", "d"]);
  const snapIndex = n.storage.firstIndex() - 1;
  t.true(n.appliedIndexes.every((i) => i > snapIndex));
});

test("bad configuration and inconsistent storage are rejected loudly", (t) => {
  const storage = new MemoryStorage();
  storage.applySnapshot(bootstrapSnapshot([1]));
  const base = { id: 1, storage, electionTick: 10, heartbeatTick: 1, randomInt: mulberry32(1) };
  t.throws(() => new RawNode({ ...base, id: 0 }), { instanceOf: RaftPanic });
  t.throws(() => new RawNode({ ...base, electionTick: 1 }), { instanceOf: RaftPanic });
  storage.setHardState({ term: 3, vote: 0, commit: 50 });
  t.throws(() => new RawNode(base), { instanceOf: RaftPanic, message: /commit 50 is past last index/ });
});

test("a single-voter cluster elects itself and commits alone", (t) => {
  const net = new Network([1]);
  net.tick(25);
  t.deepEqual(net.leaders(), [1]);
  net.propose(1, "solo");
  t.deepEqual(net.appliedText(1), ["solo"]);
  net.node(1).raw.readIndex(enc("r"));
  net.settle();
  t.is(net.node(1).readStates.length, 1);
});

test("a node at term 0 can reject a pre-vote (the rejection carries term 0)", (t) => {
  const net = new Network([1, 2, 3]);
  const raw = net.node(2).raw;
  raw.step(message({ type: MessageType.PreVote, from: 3, to: 2, term: 1, index: 0, logTerm: 0 }));
  const resp = raw.ready().messages.find((m) => m.type === MessageType.PreVoteResp);
  t.true(resp?.reject);
  t.is(resp?.term, 0);
});

test("restart with an applied index above the synced commit index raises the commit index", (t) => {
  const net = committedCluster();
  const n = net.node(2);
  const { commit } = n.raw.status().hardState;
  n.storage.setHardState({ ...n.storage.initialState().hardState, commit: 1 }); // commit was not synced
  const restarted = net.start(2, n.storage, 3, { applied: commit });
  t.is(restarted.raw.status().hardState.commit, commit);
  t.is(restarted.raw.status().applied, commit);
  t.false(restarted.raw.hasReady() && restarted.raw.ready().committedEntries.length > 0, "nothing re-applied");
  t.throws(() => net.start(2, n.storage, 3, { applied: commit + 10 }), { instanceOf: RaftPanic });
});

test("fuzz: random messages only ever raise ErrInvalidMessage, never a crash or a panic", (t) => {
  const rnd = mulberry32(42);
  const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.propose(1, "a");
  const types = Array.from({ length: 20 }, (_, i) => i as MessageType);
  let invalid = 0;
  for (let i = 0; i < 3000; i++) {
    const to = pick([1, 2, 3]);
    const term = pick([0, 1, 2, 3, 50]);
    const index = pick([0, 1, 2, 3, 4, 100, -1]);
    const m = message({
      type: pick(types), from: pick([1, 2, 3, 4, 9]), to, term, index, logTerm: pick([0, 1, 2, 3]),
      commit: pick([0, 1, 3, 100]), reject: rnd(2) === 0, rejectHint: pick([0, 1, 5]),
      entries: rnd(3) === 0 ? [{ term: pick([1, 2, term]), index: index + 1, type: EntryType.Normal, data: enc("z") }] : [],
      context: rnd(4) === 0 ? enc(`c${i}`) : new Uint8Array(0),
    });
    try {
      net.node(to).raw.step(m);
    } catch (e) {
      if (!(e instanceof ErrInvalidMessage)) throw e;
      invalid++;
    }
    if (i % 10 === 0) net.settle();
    if (i % 50 === 0) net.tick(1);
  }
  t.true(invalid > 0);
  net.tick(30);
  t.is(net.leaders().length, 1);
});

test("maxCommittedSizePerReady splits a burst of committed entries over Readies, in order, none lost", (t) => {
  const storage = new MemoryStorage();
  storage.applySnapshot(bootstrapSnapshot([1]));
  const raw = new RawNode({ id: 1, storage, electionTick: 10, heartbeatTick: 1, randomInt: mulberry32(3), maxCommittedSizePerReady: 4096 });
  raw.campaign();
  const applied: number[] = [];
  const sizes: number[][] = [];
  const drain = () => {
    while (raw.hasReady()) {
      const rd = raw.ready();
      if (rd.hardState !== null) storage.setHardState(rd.hardState);
      storage.append(rd.entries);
      sizes.push(rd.committedEntries.map((e) => e.data.length));
      for (const e of rd.committedEntries) applied.push(e.index);
      raw.advance(rd);
    }
  };
  drain();
  raw.proposeMany(Array.from({ length: 20 }, () => new Uint8Array(1000)));
  drain();
  const last = storage.lastIndex();
  t.deepEqual(applied, Array.from({ length: last }, (_, i) => i + 1).filter((i) => i > 1), "every committed entry once, in order");
  const burst = sizes.filter((s) => s.some((n) => n === 1000));
  t.true(burst.length >= 5, `20 entries of 1000 B over Readies of at most 4096 B: ${burst.length} Readies`);
  t.true(burst.every((s) => s.reduce((a, b) => a + b, 0) <= 4096));
  t.throws(() => new RawNode({ id: 1, storage, electionTick: 10, heartbeatTick: 1, randomInt: mulberry32(3), maxCommittedSizePerReady: 0 }), { instanceOf: RaftPanic });
});

/** True when the RawNode has committed entries not handed out yet. */
function committedPending(raw: RawNode): boolean {
  const s = raw.status();
  return s.hardState.commit > s.applied;
}

test("setMaxCommittedSizePerReady resizes the next Readies (at least one entry each), in order, none lost", (t) => {
  const storage = new MemoryStorage();
  storage.applySnapshot(bootstrapSnapshot([1]));
  const raw = new RawNode({ id: 1, storage, electionTick: 10, heartbeatTick: 1, randomInt: mulberry32(3), maxCommittedSizePerReady: 64 * 1024 });
  raw.campaign();
  const applied: number[] = [];
  const readies: number[] = [];
  const take = () => {
    const rd = raw.ready();
    if (rd.hardState !== null) storage.setHardState(rd.hardState);
    storage.append(rd.entries);
    for (const e of rd.committedEntries) applied.push(e.index);
    raw.advance(rd);
    return rd.committedEntries.filter((e) => e.data.length === 1000).length;
  };
  while (raw.hasReady()) take();
  raw.proposeMany(Array.from({ length: 12 }, () => new Uint8Array(1000)));
  while (raw.hasReady() && !committedPending(raw)) take(); // appends, then commits (a single voter)
  raw.setMaxCommittedSizePerReady(2500);
  readies.push(take());
  raw.setMaxCommittedSizePerReady(1); // below one entry: still one per Ready
  readies.push(take());
  raw.setMaxCommittedSizePerReady(64 * 1024);
  while (raw.hasReady()) readies.push(take());
  t.deepEqual(readies.slice(0, 2), [2, 1]);
  t.deepEqual(applied, Array.from({ length: storage.lastIndex() - 1 }, (_, i) => i + 2), "every committed entry once, in order");
  for (const bad of [0, -1, 1.5, Number.NaN]) t.throws(() => raw.setMaxCommittedSizePerReady(bad), { instanceOf: RaftPanic });
});
