// SimNode's simulated disk (asynchronous writes), the Ready driver around it,
// and its crash points, driven by a scripted fake RawNode.

import test from "ava";
import { MemoryStorage } from "../../node/raft/memory-storage.js";
import { ReadyDriver } from "../../node/raft/ready-driver.js";
import {
  type ConfState, type Entry, EntryType, type HardState, type Message, message, MessageType, type Ready, StateType,
} from "../../node/raft/types.js";
import { Checker } from "./checker.js";
import { bootstrapSnapshot, type CrashPoint, type NodeEnv, SimNode } from "./node.js";
import { Prng } from "./prng.js";
import type { RaftLib, SimRaftConfig, SimRawNode } from "./raft-lib.js";
import { encodeProposal } from "./state-machine.js";

const scripts: Ready[][] = [];
let advanced = 0;

class ScriptedRawNode implements SimRawNode {
  private readonly script: Ready[];
  constructor(readonly config: SimRaftConfig) {
    this.script = scripts.shift() ?? [];
  }
  tick(): void {}
  campaign(): void {}
  propose(): void {}
  proposeConfChange(): void {}
  applyConfChange(): ConfState { return { voters: [1], learners: [] }; }
  step(): void {}
  readIndex(): void {}
  transferLeadership(): void {}
  reportUnreachable(): void {}
  reportSnapshot(): void {}
  hasReady(): boolean { return this.script.length > 0; }
  ready(): Ready { return this.script.shift()!; }
  advance(): void { advanced++; }
  status() {
    return { id: this.config.id, hardState: { term: 0, vote: 0, commit: 0 }, softState: { lead: 0, state: 0 }, applied: 0 };
  }
}

const lib: RaftLib = {
  RawNode: ScriptedRawNode,
  ReadyDriver,
  MemoryStorage,
  encodeConfChange: () => new Uint8Array(0),
  decodeConfChange: () => { throw new Error("no conf changes here"); },
};

function harness(maxWriteDelay: number) {
  const clock = { now: 0 };
  const sent: Message[] = [];
  const crashed: number[] = [];
  const env: NodeEnv = {
    lib,
    checker: new Checker(),
    params: { electionTick: 10, heartbeatTick: 1, maxSizePerMsg: 1024, maxInflightMsgs: 4, maxSnapshotChunkBytes: 64, snapshotEvery: 1000, compactKeep: 0, maxWriteDelay },
    now: () => clock.now,
    trace: () => {},
    send: (_from, m) => sent.push(m),
    acknowledge: () => {},
    readDone: () => {},
    crashed: (id) => crashed.push(id),
    count: () => {},
    elected: () => {},
  };
  return { env, sent, crashed, clock };
}

const ent = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: encodeProposal(index) });
const hs = (term: number, commit: number): HardState => ({ term, vote: 1, commit });
const rd = (fields: Partial<Ready>): Ready => ({
  softState: null, hardState: null, readStates: [], entries: [], snapshot: null, committedEntries: [], messages: [], mustSync: false,
  ...fields,
});
const appendReady = rd({
  hardState: hs(2, 1), entries: [ent(2, 2), ent(3, 2)], mustSync: true,
  messages: [message({ type: MessageType.AppResp, from: 1, to: 2, term: 2, index: 3 })],
});
const commitReady = rd({ hardState: hs(2, 3), committedEntries: [ent(2, 2), ent(3, 2)], mustSync: false });

function startNode(script: Ready[], maxWriteDelay = 0) {
  const h = harness(maxWriteDelay);
  scripts.push(script);
  const node = new SimNode(1, h.env, new Prng(1), bootstrapSnapshot([1, 2, 3]));
  node.start();
  return { node, ...h };
}

/** Handles Readys (writes complete within the tick) until nothing is left or the node crashed. */
function drain(node: SimNode): void {
  for (let i = 0; i < 10 && node.handleReady(); i++);
}

test("a synced Ready is durable; a commit-only Ready without mustSync is lost by a crash", (t) => {
  const { node, sent, crashed } = startNode([appendReady, commitReady]);
  drain(node);
  t.is(node.hardState().commit, 3);
  t.is(node.sm.applied, 3);
  t.is(sent.length, 1);
  node.crash("test");
  t.false(node.live);
  t.deepEqual(crashed, [1]);
  t.is(node.hardState().commit, 1, "the unsynced commit index is gone");
  t.is(node.storage.lastIndex(), 3, "synced entries survive");
});

test("a follower's append response waits for its write, which completes after its delay", (t) => {
  const { node, sent, clock } = startNode([appendReady], 50);
  t.true(node.handleReady());
  t.true(node.isWriting);
  for (; node.isWriting && clock.now < 60; clock.now++) {
    t.is(sent.length, 0, `at t=${clock.now} the AppResp left before the write completed`);
    t.is(node.storage.lastIndex(), 1);
    node.handleReady();
  }
  t.false(node.isWriting);
  t.is(node.storage.lastIndex(), 3);
  t.is(sent.length, 1);
});

const leaderReady = rd({
  softState: { lead: 1, state: StateType.Leader }, hardState: hs(2, 1), entries: [ent(2, 2), ent(3, 2)], mustSync: true,
  messages: [message({ type: MessageType.App, from: 1, to: 2, term: 2, logTerm: 1, index: 1, entries: [ent(2, 2), ent(3, 2)], commit: 1 })],
});

const points: [CrashPoint, { last: number; sent: number; advanced: number }][] = [
  ["before-write", { last: 1, sent: 0, advanced: 0 }],
  ["during-write", { last: 1, sent: 0, advanced: 0 }],
  ["after-write", { last: 3, sent: 0, advanced: 0 }],
  ["after-apply", { last: 3, sent: 1, advanced: 1 }],
];
for (const [point, want] of points) {
  test(`a crash ${point} keeps exactly what was written and sent`, (t) => {
    const before = advanced;
    const { node, sent } = startNode([{ ...appendReady, committedEntries: [] }]);
    node.crashPending = point;
    drain(node);
    t.false(node.live);
    t.is(node.storage.lastIndex(), want.last);
    t.is(sent.length, want.sent);
    t.is(advanced - before, want.advanced, "advance is called only once the write completed");
  });
}

test("a leader's replication leaves while it writes; a crash before the write completes loses the entries", (t) => {
  const { node, sent } = startNode([rd({ hardState: hs(2, 1), mustSync: true }), leaderReady]);
  node.handleReady(); // writes term 2 and the vote
  node.handleReady(); // completes that write, takes leaderReady and starts its write
  t.true(node.isWriting);
  node.crashPending = "during-write";
  node.handleReady();
  t.false(node.live);
  t.deepEqual(sent.map((m) => m.type), [MessageType.App], "sent before the write completed");
  t.is(node.storage.lastIndex(), 1, "the unsynced entries are lost");
});

test("a restart rebuilds the state machine from the durable snapshot", (t) => {
  const { node } = startNode([appendReady, commitReady]);
  drain(node);
  node.crash("test");
  scripts.push([]);
  node.start();
  t.true(node.live);
  t.is(node.sm.applied, 1, "applied restarts at the snapshot index; raft re-delivers the rest");
});

test("a Ready that appends entries without mustSync is a Ready Contract violation", (t) => {
  const { node } = startNode([{ ...appendReady, mustSync: false }]);
  t.throws(() => node.handleReady(), { message: /Ready Contract/ });
});

test("a message that acknowledges entries not durable here is a Ready Contract violation", (t) => {
  const early = rd({ messages: [message({ type: MessageType.AppResp, from: 1, to: 2, term: 2, index: 3 })] });
  const { node } = startNode([early]);
  t.throws(() => drain(node), { message: /Ready Contract.*acknowledging index 3 while its durable log ends at 1/ });
});

// Seeds 5574 and 5830: a follower accepts entry 3 of term 2 (ack queued), then, before the Ready is taken,
// the leader of term 3 overwrites entry 2 onwards; the Ready writes term 3 and entry 2 of term 3.
const supersededReady = (ackTerm: number) => rd({
  hardState: hs(3, 1), entries: [ent(2, 3)], mustSync: true,
  messages: [
    message({ type: MessageType.AppResp, from: 1, to: 2, term: ackTerm, index: 3 }),
    message({ type: MessageType.AppResp, from: 1, to: 3, term: 3, index: 2 }),
  ],
});

test("an older term's ack of entries that the same Ready replaced is stale, not a Ready Contract violation", (t) => {
  const { node, sent } = startNode([supersededReady(2)]);
  t.notThrows(() => drain(node));
  t.deepEqual(sent.map((m) => [m.to, m.index]), [[2, 3], [3, 2]]);
  t.is(node.storage.lastIndex(), 2);
});

test("an ack of the current term above the durable log stays a Ready Contract violation after a rewrite", (t) => {
  const { node } = startNode([supersededReady(3)]);
  t.throws(() => drain(node), { message: /Ready Contract.*acknowledging index 3 while its durable log ends at 2/ });
});

test("an older term's ack above the durable log is a violation when no rewrite reached its index", (t) => {
  const { node } = startNode([rd({ ...supersededReady(2), entries: [] })]);
  t.throws(() => drain(node), { message: /Ready Contract.*acknowledging index 3 while its durable log ends at 1/ });
});
