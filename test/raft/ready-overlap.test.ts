// The Ready driver sends a leader's replication messages while that Ready's
// entries are still being written (node/raft/ready-driver.ts, planReady; the
// argument is in docs/raft.md). These tests run the driver over RawNodes
// whose writes complete late, in random order with random message delivery,
// and check the property
// it must keep: an entry is applied (or a commit index covering it leaves a
// node) only once a quorum of voters, and the applying node, hold it durably.
import test from "ava";
import {
  type Entry, EntryType, type Message, MemoryStorage, MessageType, type NodeId,
  RawNode, type Ready, ReadyDriver, StateType, bootstrapSnapshot, decodeConfChange, planReady, writesOnlyCommit,
} from "../../node/raft/index.js";
import { mulberry32 } from "./network.js";

interface NodeState {
  readonly id: NodeId;
  readonly raw: RawNode;
  /** What survived a crash: written only when a write completes. */
  readonly durable: MemoryStorage;
  role: StateType;
  /** The Ready being written, and the steps until its write completes. */
  pending: { rd: Ready; steps: number } | null;
}

interface SimNode extends NodeState {
  readonly driver: ReadyDriver;
}

class Sim {
  readonly nodes = new Map<NodeId, SimNode>();
  readonly net: Message[] = [];
  readonly violations: string[] = [];
  voters: NodeId[];
  applied = 0;
  /** App messages with entries sent before the sender's write of them completed. */
  early = 0;
  /** Readys whose committed entries were applied before their write completed. */
  applyEarly = 0;

  constructor(voters: NodeId[], learners: NodeId[], private readonly rnd: (n: number) => number) {
    this.voters = voters;
    const snap = bootstrapSnapshot(voters);
    const withLearners = { ...snap, metadata: { ...snap.metadata, confState: { voters, learners } } };
    for (const id of [...voters, ...learners]) {
      const durable = new MemoryStorage();
      durable.applySnapshot(withLearners);
      const raw = new RawNode({ id, storage: durable, electionTick: 10, heartbeatTick: 1, randomInt: mulberry32(id * 7919 + rnd(1000)) });
      const node: NodeState = { id, raw, durable, role: StateType.Follower, pending: null };
      this.nodes.set(id, Object.assign(node, { driver: this.driverOf(node) }));
    }
  }

  /** The node's Ready loop: writes complete when step() says so, a few steps later. */
  private driverOf(n: NodeState): ReadyDriver {
    return new ReadyDriver(n.raw, n.durable, {
      observe: (rd) => { if (rd.softState !== null) n.role = rd.softState.state; },
      write: (rd) => { n.pending = { rd, steps: this.rnd(4) }; },
      send: (msgs, whileWriting) => {
        if (whileWriting) this.early += msgs.filter((m) => m.entries.length > 0).length;
        this.send(n, msgs);
      },
      apply: (rd, whileWriting) => {
        if (whileWriting && rd.committedEntries.length > 0) this.applyEarly++;
        this.apply(n, rd);
      },
    });
  }

  /** Whether node `id` holds entry `e` durably (same index and term). */
  private holds(id: NodeId, e: Entry): boolean {
    const s = this.nodes.get(id)!.durable;
    return e.index <= s.lastIndex() && s.term(e.index) === e.term; // nothing is compacted in this test
  }

  private checkCommit(from: NodeId, commit: number, what: string): void {
    const s = this.nodes.get(from)!.durable;
    if (commit > s.lastIndex()) this.violations.push(`${what} from ${from}: commit ${commit} past its durable ${s.lastIndex()}`);
  }

  private send(n: NodeState, msgs: readonly Message[]): void {
    for (const m of msgs) {
      if (m.type === MessageType.App || m.type === MessageType.Heartbeat) this.checkCommit(n.id, m.commit, MessageType[m.type]);
      if (m.type === MessageType.AppResp && !m.reject && m.index > n.durable.lastIndex()) {
        this.violations.push(`AppResp from ${n.id} acknowledges ${m.index}, durable ${n.durable.lastIndex()}`);
      }
      this.net.push(m);
    }
  }

  private apply(n: NodeState, rd: Ready): void {
    for (const e of rd.committedEntries) {
      const copies = this.voters.filter((id) => this.holds(id, e)).length;
      if (copies <= this.voters.length / 2) this.violations.push(`node ${n.id} applied ${e.index} held durably by ${copies} voters`);
      if (!this.holds(n.id, e)) this.violations.push(`node ${n.id} applied ${e.index} before holding it durably`);
      if (e.type === EntryType.ConfChange) n.raw.applyConfChange(decodeConfChange(e.data));
      this.applied++;
    }
  }

  private finishWrite(n: SimNode): void {
    const { rd } = n.pending!;
    if (rd.snapshot !== null) n.durable.applySnapshot(rd.snapshot);
    n.durable.append(rd.entries);
    if (rd.hardState !== null) n.durable.setHardState(rd.hardState);
    n.pending = null;
    n.driver.writeDone();
  }

  step(): void {
    for (const n of this.nodes.values()) {
      if (n.pending === null) n.driver.next();
      else if (n.pending !== null && n.pending.steps-- <= 0) this.finishWrite(n);
    }
    // Inbound messages are stepped whenever they arrive, also while a write runs.
    for (let k = this.rnd(4); k > 0 && this.net.length > 0; k--) {
      const [m] = this.net.splice(this.rnd(Math.min(this.net.length, 3)), 1);
      if (this.rnd(50) === 0) continue; // lost
      const to = this.nodes.get(m!.to);
      if (to !== undefined) to.raw.step(m!);
    }
    if (this.rnd(3) === 0) for (const n of this.nodes.values()) n.raw.tick();
    const lead = [...this.nodes.values()].find((n) => n.role === StateType.Leader);
    if (lead !== undefined && this.rnd(2) === 0) {
      try {
        lead.raw.propose(Uint8Array.of(this.rnd(256)));
      } catch { /* dropped: fine */ }
    }
  }
}

function run(t: import("ava").ExecutionContext, voters: NodeId[], learners: NodeId[], seeds: number, steps: number) {
  let applied = 0;
  let early = 0;
  let applyEarly = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const sim = new Sim(voters, learners, mulberry32(seed));
    sim.nodes.get(voters[0]!)!.raw.campaign();
    for (let i = 0; i < steps && sim.violations.length === 0; i++) sim.step();
    t.deepEqual(sim.violations, [], `seed ${seed}`);
    applied += sim.applied;
    early += sim.early;
    applyEarly += sim.applyEarly;
  }
  return { applied, early, applyEarly };
}

test("three voters: replication overlaps the leader's write, and nothing is applied before a durable quorum", (t) => {
  const { applied, early, applyEarly } = run(t, [1, 2, 3], [], 40, 600);
  t.true(applied > 1000, `applied ${applied}`);
  t.true(early > 500 && applyEarly > 100, `early ${early}, applied early ${applyEarly}`); // the overlaps were exercised
});

test("one voter and a learner: the leader's self-acknowledged commit waits for its write", (t) => {
  const { applied } = run(t, [1], [2], 40, 400);
  t.true(applied > 500, `applied ${applied}`);
});

function readyOf(p: Partial<Ready>): Ready {
  return {
    softState: null, hardState: null, readStates: [], entries: [], snapshot: null, committedEntries: [], messages: [],
    mustSync: false, ...p,
  };
}

const app = (to: NodeId, commit: number): Message => ({
  type: MessageType.App, from: 1, to, term: 2, logTerm: 2, index: 5, entries: [], commit, reject: false, rejectHint: 0,
  snapshot: null, context: new Uint8Array(0),
});
const resp = { ...app(2, 0), type: MessageType.AppResp };
const entry = (index: number): Entry => ({ term: 2, index, type: EntryType.Normal, data: new Uint8Array(0) });

test("planReady: only a leader's replication messages go early, and only when term, vote and commit allow", (t) => {
  const durable = { hardState: { term: 2, vote: 1, commit: 5 }, lastIndex: 5 };
  const rd = readyOf({ entries: [entry(6)], messages: [app(2, 5), resp, app(3, 5)], mustSync: true });
  t.deepEqual(planReady(rd, StateType.Leader, durable).early.map((m) => m.to), [2, 3]);
  t.deepEqual(planReady(rd, StateType.Leader, durable).late, [resp]);
  t.deepEqual(planReady(rd, StateType.Follower, durable).early, []);
  const newTerm = readyOf({ ...rd, hardState: { term: 3, vote: 0, commit: 5 } });
  t.deepEqual(planReady(newTerm, StateType.Leader, durable).early, []);
  const newVote = readyOf({ ...rd, hardState: { term: 2, vote: 2, commit: 5 } });
  t.deepEqual(planReady(newVote, StateType.Leader, durable).early, []);
  const commitAhead = readyOf({ ...rd, hardState: { term: 2, vote: 1, commit: 6 } });
  t.deepEqual(planReady(commitAhead, StateType.Leader, durable).early, []);
  t.is(planReady(commitAhead, StateType.Leader, durable).late.length, 3);
  const gap = readyOf({ ...rd, entries: [entry(7)] });
  t.deepEqual(planReady(gap, StateType.Leader, durable).early, []);
  const onlyCommit = readyOf({ hardState: { term: 2, vote: 1, commit: 5 }, messages: [resp] });
  t.deepEqual(planReady(onlyCommit, StateType.Follower, durable).early, [resp]);
});

test("planReady: committed entries are applied before the write only when durable and not replaced", (t) => {
  const durable = { hardState: { term: 2, vote: 1, commit: 3 }, lastIndex: 5 };
  const committed = [entry(4), entry(5)];
  t.true(planReady(readyOf({ entries: [entry(6)], committedEntries: committed, mustSync: true }), StateType.Leader, durable).applyBeforeWrite);
  t.true(planReady(readyOf({ committedEntries: committed }), StateType.Follower, durable).applyBeforeWrite);
  // a follower's Ready that replaces entry 5 and commits it: the new entry 5 is not durable yet
  t.false(planReady(readyOf({ entries: [entry(5)], committedEntries: committed, mustSync: true }), StateType.Follower, durable).applyBeforeWrite);
  // committed past the durable log (a single voter commits at append)
  t.false(planReady(readyOf({ entries: [entry(6)], committedEntries: [entry(6)], mustSync: true }), StateType.Leader, durable).applyBeforeWrite);
});

test("writesOnlyCommit: only a Ready without entries, snapshot or term/vote change", (t) => {
  const hs = { term: 2, vote: 1, commit: 5 };
  t.true(writesOnlyCommit(readyOf({ hardState: { ...hs, commit: 7 }, committedEntries: [entry(6)] }), hs));
  t.true(writesOnlyCommit(readyOf({ messages: [resp] }), hs));
  t.false(writesOnlyCommit(readyOf({ entries: [entry(6)], mustSync: true }), hs));
  t.false(writesOnlyCommit(readyOf({ hardState: { term: 3, vote: 0, commit: 5 }, mustSync: true }), hs));
  t.false(writesOnlyCommit(readyOf({ hardState: { term: 2, vote: 2, commit: 5 } }), hs));
});
