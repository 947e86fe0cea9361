// A tiny in-process network of RawNodes for the raft unit tests: each node
// has a MemoryStorage and node/raft's ReadyDriver, whose writes complete at
// once (persist, send, apply), and the network delivers messages until quiet. Links can be cut per direction,
// and individual messages can be dropped with a filter.

import {
  type Config,
  ConfChangeType,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  MemoryStorage,
  type NodeId,
  RawNode,
  type Ready,
  ReadyDriver,
  type ReadState,
  StateType,
  bootstrapSnapshot,
  decodeConfChange,
} from "../../node/raft/index.js";

export function mulberry32(seed: number): (maxExclusive: number) => number {
  let a = seed >>> 0;
  return (maxExclusive: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return Math.floor(r * maxExclusive);
  };
}

export interface TestNode {
  id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  /** Normal entries with data, in apply order. */
  applied: Entry[];
  /** Every applied index, to check exactly-once. */
  appliedIndexes: number[];
  readStates: ReadState[];
  snapshotsApplied: number;
  config: Config;
  driver: ReadyDriver;
}

export type Filter = (m: Message) => boolean;

export class Network {
  readonly nodes = new Map<NodeId, TestNode>();
  private queue: Message[] = [];
  private readonly cut = new Set<string>();
  /** Messages for which a filter returns true are dropped. */
  filters: Filter[] = [];
  /** Every message delivered (for assertions). */
  readonly delivered: Message[] = [];

  constructor(voters: NodeId[], private readonly base: Partial<Config> = {}, seed = 1) {
    for (const id of voters) this.addNode(id, bootstrapSnapshot(voters), seed);
  }

  /** Adds a node; with a snapshot it is an initial member, without one it is a blank joiner. */
  addNode(id: NodeId, snap?: ReturnType<typeof bootstrapSnapshot>, seed = 1, cfg: Partial<Config> = {}): TestNode {
    const storage = new MemoryStorage();
    if (snap !== undefined) storage.applySnapshot(snap);
    return this.start(id, storage, seed, cfg);
  }

  /** (Re)starts node id from storage, as after a crash that kept everything persisted. */
  start(id: NodeId, storage: MemoryStorage, seed = 1, cfg: Partial<Config> = {}): TestNode {
    const config: Config = {
      id, storage, electionTick: 10, heartbeatTick: 1, randomInt: mulberry32(seed * 1000 + id), ...this.base, ...cfg,
    };
    const raw = new RawNode(config);
    const node: TestNode = {
      id, raw, storage, applied: [], appliedIndexes: [], readStates: [], snapshotsApplied: 0, config,
      driver: new ReadyDriver(raw, storage, {
        write: (rd) => this.persist(node, rd),
        send: (msgs) => this.queue.push(...msgs),
        apply: (rd) => this.apply(node, rd),
      }),
    };
    this.nodes.set(id, node);
    return node;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Handles one Ready of one node, its write completing at once. */
  processReady(id: NodeId): boolean {
    const { driver } = this.node(id);
    if (!driver.next()) return false;
    driver.writeDone();
    return true;
  }

  private persist(n: TestNode, rd: Ready): void {
    if (rd.snapshot !== null) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState !== null) n.storage.setHardState(rd.hardState);
  }

  private apply(n: TestNode, rd: Ready): void {
    if (rd.snapshot !== null) {
      n.snapshotsApplied++;
      n.applied = decodeState(rd.snapshot.data);
    }
    n.readStates.push(...rd.readStates);
    for (const e of rd.committedEntries) {
      n.appliedIndexes.push(e.index);
      if (e.type === EntryType.ConfChange) n.raw.applyConfChange(decodeConfChange(e.data));
      else if (e.data.byteLength > 0) n.applied.push(e);
    }
  }

  /** Snapshots node id's state machine at its applied index and compacts its log up to it. */
  compact(id: NodeId): void {
    const n = this.node(id);
    const st = n.raw.status();
    n.storage.createSnapshot(st.applied, st.confState, encodeState(n.applied));
    n.storage.compact(st.applied);
  }

  /** Replaces node id's RawNode by a fresh one over the same storage (a restart losing nothing durable). */
  restart(id: NodeId, seed = 7): TestNode {
    const old = this.node(id);
    const snap = old.storage.snapshot();
    const n = this.start(id, old.storage, seed, old.config);
    n.applied = snap.metadata.index === 0 ? [] : decodeState(snap.data);
    return n;
  }

  /** Delivers messages until no node has anything to do. */
  settle(maxMessages = 100_000): void {
    for (let i = 0; i < maxMessages; i++) {
      for (const id of this.nodes.keys()) this.processReady(id);
      const m = this.queue.shift();
      if (m === undefined) return;
      this.deliver(m);
    }
    throw new Error("network did not settle");
  }

  /** Takes all queued messages without delivering them (for manual delivery). */
  takeMessages(): Message[] {
    for (const id of this.nodes.keys()) this.processReady(id);
    const q = this.queue;
    this.queue = [];
    return q;
  }

  /** Like takeMessages, but leaves node `id` untouched (its Ready is not taken). */
  takeMessagesExcept(id: NodeId): Message[] {
    for (const other of this.nodes.keys()) if (other !== id) this.processReady(other);
    const q = this.queue;
    this.queue = [];
    return q;
  }

  deliver(m: Message): void {
    if (this.cut.has(`${m.from}->${m.to}`) || this.filters.some((f) => f(m))) return;
    const to = this.nodes.get(m.to);
    if (to === undefined) return;
    this.delivered.push(m);
    to.raw.step(m);
  }

  /** Ticks every node (or the given ones) n times, settling after each tick. */
  tick(n = 1, ids: NodeId[] = [...this.nodes.keys()]): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids) this.node(id).raw.tick();
      this.settle();
    }
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}->${to}`);
  }

  heal(): void {
    this.cut.clear();
    this.filters = [];
  }

  /** Elects `id` by campaigning and settling. */
  elect(id: NodeId): void {
    this.node(id).raw.campaign();
    this.settle();
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.raw.status().softState.state === StateType.Leader).map((n) => n.id);
  }

  propose(id: NodeId, text: string): void {
    this.node(id).raw.propose(new TextEncoder().encode(text));
    this.settle();
  }

  appliedText(id: NodeId): string[] {
    return this.node(id).applied.map((e) => new TextDecoder().decode(e.data));
  }

  status(id: NodeId) {
    return this.node(id).raw.status();
  }
}

/** The test state machine is the list of applied entries; its snapshot is JSON. */
function encodeState(applied: Entry[]): Uint8Array {
  return enc(JSON.stringify(applied.map((e) => ({ term: e.term, index: e.index, text: new TextDecoder().decode(e.data) }))));
}

function decodeState(b: Uint8Array): Entry[] {
  if (b.byteLength === 0) return [];
  const rows = JSON.parse(new TextDecoder().decode(b)) as { term: number; index: number; text: string }[];
  return rows.map((r) => ({ term: r.term, index: r.index, type: EntryType.Normal, data: enc(r.text) }));
}

export const enc = (s: string) => new TextEncoder().encode(s);

export { ConfChangeType, MessageType, StateType };
