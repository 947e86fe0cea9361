// SimNode's simulated disk and crash points, driven by a scripted fake RawNode.

import test from "ava";
import { MemoryStorage } from "../../node/raft/memory-storage.js";
import {
  type ConfState, type Entry, EntryType, type HardState, type Message, message, MessageType, type Ready,
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
  MemoryStorage,
  encodeConfChange: () => new Uint8Array(0),
  decodeConfChange: () => { throw new Error("no conf changes here"); },
};

function harness() {
  const sent: Message[] = [];
  const crashed: number[] = [];
  const env: NodeEnv = {
    lib,
    checker: new Checker(),
    params: { electionTick: 10, heartbeatTick: 1, maxSizePerMsg: 1024, maxInflightMsgs: 4, maxSnapshotChunkBytes: 64, snapshotEvery: 1000, compactKeep: 0 },
    trace: () => {},
    send: (_from, m) => sent.push(m),
    acknowledge: () => {},
    readDone: () => {},
    crashed: (id) => crashed.push(id),
    count: () => {},
    elected: () => {},
  };
  return { env, sent, crashed };
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

function startNode(script: Ready[]) {
  const h = harness();
  scripts.push(script);
  const node = new SimNode(1, h.env, new Prng(1), bootstrapSnapshot([1, 2, 3]));
  node.start();
  return { node, ...h };
}

test("a synced Ready is durable; a commit-only Ready without mustSync is lost by a crash", (t) => {
  const { node, sent, crashed } = startNode([appendReady, commitReady]);
  t.true(node.handleReady());
  t.true(node.handleReady());
  t.is(node.hardState().commit, 3);
  t.is(node.sm.applied, 3);
  t.is(sent.length, 1);
  node.crash("test");
  t.false(node.live);
  t.deepEqual(crashed, [1]);
  t.is(node.hardState().commit, 1, "the unsynced commit index is gone");
  t.is(node.storage.lastIndex(), 3, "synced entries survive");
});

const points: [CrashPoint, { last: number; sent: number; applied: boolean }][] = [
  ["before-persist", { last: 1, sent: 0, applied: false }],
  ["after-persist", { last: 3, sent: 0, applied: false }],
  ["after-apply", { last: 3, sent: 1, applied: true }],
];
for (const [point, want] of points) {
  test(`a crash ${point} keeps exactly what was persisted and sent`, (t) => {
    const before = advanced;
    const { node, sent } = startNode([{ ...appendReady, committedEntries: [] }]);
    node.crashPending = point;
    node.handleReady();
    t.false(node.live);
    t.is(node.storage.lastIndex(), want.last);
    t.is(sent.length, want.sent);
    t.is(advanced, before, "advance is never called for a Ready cut short by a crash");
  });
}

test("a restart rebuilds the state machine from the durable snapshot", (t) => {
  const { node } = startNode([appendReady, commitReady]);
  node.handleReady();
  node.handleReady();
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
