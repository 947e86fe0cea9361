// Three RawNodes (node/raft) talking through real Transports over gRPC with
// mTLS on 127.0.0.1: election, replication, a leader crash, and a lagging
// node catching up through a chunked snapshot sent over the wire.

import test from "ava";
import {
  type Entry, EntryType, ErrInvalidMessage, ErrProposalDropped, MemoryStorage, MessageType, type NodeId, RawNode, type Ready, ReadyDriver,
  StateType, bootstrapSnapshot, decodeConfChange,
} from "../../node/raft/index.js";
import { Transport, devCertFiles, loadTls } from "../../node/transport/index.js";
import { FAST_BACKOFF, makeCerts, waitFor } from "./helpers.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A minimal node: RawNode + MemoryStorage + Transport + ReadyDriver (writes complete at once), driven by a tick timer and inbound messages. */
class GrpcRaftNode {
  readonly storage: MemoryStorage;
  readonly raw: RawNode;
  readonly transport: Transport;
  private readonly driver: ReadyDriver;
  applied: string[] = [];
  snapshotsApplied = 0;
  /** MsgSnap chunks received. */
  snapChunks = 0;
  private timer: NodeJS.Timeout | null = null;

  /** A new member of `voters`, or, with `restart`, the same node back on its durable storage. */
  constructor(
    readonly id: NodeId, voters: NodeId[], certDir: string,
    restart?: { storage: MemoryStorage; listenAddress: string },
  ) {
    this.storage = restart?.storage ?? new MemoryStorage();
    if (restart === undefined) this.storage.applySnapshot(bootstrapSnapshot(voters));
    const snap = this.storage.snapshot();
    if (snap.data.byteLength > 0) this.applied = JSON.parse(dec.decode(snap.data)) as string[];
    this.raw = new RawNode({
      id, storage: this.storage, electionTick: 25, heartbeatTick: 2,
      randomInt: (n) => Math.floor(Math.random() * n), maxSnapshotChunkBytes: 64,
    });
    this.transport = new Transport({
      nodeId: id, clusterId: "raft-test", listenAddress: restart?.listenAddress ?? "127.0.0.1:0", tls: loadTls(devCertFiles(certDir, id)),
      backoff: FAST_BACKOFF,
      onMessage: (m) => {
        if (m.type === MessageType.Snap) this.snapChunks++;
        this.guarded(() => this.raw.step(m));
      },
      reportUnreachable: (p) => this.guarded(() => this.raw.reportUnreachable(p)),
      reportSnapshot: (p, ok) => this.guarded(() => this.raw.reportSnapshot(p, ok)),
    });
    this.driver = new ReadyDriver(this.raw, this.storage, {
      write: (rd) => this.persist(rd),
      send: (messages) => this.transport.send(messages),
      apply: (rd) => this.apply(rd),
    });
  }

  async start(): Promise<string> {
    const addr = await this.transport.start();
    this.timer = setInterval(() => this.guarded(() => this.raw.tick()), 20);
    return addr;
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.transport.stop();
  }

  isLeader(): boolean {
    return this.raw.status().softState.state === StateType.Leader;
  }

  propose(values: string[]): void {
    this.guarded(() => { for (const v of values) this.raw.propose(enc.encode(v)); });
  }

  /** Snapshots the applied state and compacts the log up to it. */
  compact(): void {
    const st = this.raw.status();
    this.storage.createSnapshot(st.applied, st.confState, enc.encode(JSON.stringify(this.applied)));
    this.storage.compact(st.applied);
  }

  private guarded(f: () => void): void {
    try {
      f();
    } catch (err) {
      if (!(err instanceof ErrInvalidMessage)) throw err;
    }
    this.processReady();
  }

  private processReady(): void {
    while (this.driver.next()) this.driver.writeDone();
  }

  private persist(rd: Ready): void {
    if (rd.snapshot !== null) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    if (rd.hardState !== null) this.storage.setHardState(rd.hardState);
  }

  private apply(rd: Ready): void {
    if (rd.snapshot !== null && rd.snapshot.data.byteLength > 0) {
      this.applied = JSON.parse(dec.decode(rd.snapshot.data)) as string[];
      this.snapshotsApplied++;
    }
    for (const e of rd.committedEntries) this.applyEntry(e);
  }

  private applyEntry(e: Entry): void {
    if (e.type === EntryType.ConfChange) this.raw.applyConfChange(decodeConfChange(e.data));
    else if (e.data.byteLength > 0) this.applied.push(dec.decode(e.data));
  }
}

let certs: ReturnType<typeof makeCerts>;
test.before(() => {
  certs = makeCerts([1, 2, 3]);
});
test.after.always(() => certs.cleanup());

async function cluster(t: { teardown(f: () => Promise<void>): void }): Promise<GrpcRaftNode[]> {
  const ids = [1, 2, 3];
  const nodes = ids.map((id) => new GrpcRaftNode(id, ids, certs.dir));
  t.teardown(async () => { await Promise.all(nodes.map((n) => n.stop())); });
  const addrs = await Promise.all(nodes.map((n) => n.start()));
  for (const n of nodes) ids.forEach((id, i) => { if (id !== n.id) n.transport.addPeer(id, addrs[i]!); });
  return nodes;
}

function agreedLeader(nodes: GrpcRaftNode[]): GrpcRaftNode | undefined {
  const leads = new Set(nodes.map((n) => n.raw.status().softState.lead));
  const [lead] = leads;
  if (leads.size !== 1 || lead === undefined || lead === 0) return undefined;
  return nodes.find((n) => n.id === lead && n.isLeader());
}

/** Proposes through the agreed leader, waiting out an election if one is running. */
async function proposeAll(nodes: GrpcRaftNode[], values: string[]): Promise<void> {
  await waitFor(() => {
    const leader = agreedLeader(nodes);
    if (leader === undefined) return false;
    try {
      leader.propose(values);
      return true;
    } catch (err) {
      if (err instanceof ErrProposalDropped) return false;
      throw err;
    }
  }, "a leader that takes the proposal");
}

test("three RawNodes over gRPC elect one leader and commit entries on every node", async (t) => {
  const nodes = await cluster(t);
  await waitFor(() => agreedLeader(nodes) !== undefined, "a leader all nodes agree on");
  t.is(nodes.filter((n) => n.isLeader()).length, 1);
  const values = Array.from({ length: 50 }, (_, i) => `v${i}`);
  await proposeAll(nodes, values);
  await waitFor(() => nodes.every((n) => n.applied.length === values.length), "entries applied everywhere");
  for (const n of nodes) t.deepEqual(n.applied, values);
  // Batching is asserted deterministically in transport.test.ts: how many messages share an
  // event-loop turn here depends on the machine's load.
});

test("after the leader stops, the other two elect a new leader and keep committing", async (t) => {
  const nodes = await cluster(t);
  await waitFor(() => agreedLeader(nodes) !== undefined, "first leader");
  const old = agreedLeader(nodes)!;
  await proposeAll(nodes, ["before"]);
  await waitFor(() => nodes.every((n) => n.applied.length === 1), "first entry");
  await old.stop();
  const rest = nodes.filter((n) => n !== old);
  await waitFor(() => agreedLeader(rest) !== undefined, "new leader");
  const leader = agreedLeader(rest)!;
  t.not(leader.id, old.id);
  await proposeAll(rest, ["after"]);
  await waitFor(() => rest.every((n) => n.applied.length === 2), "entry after failover");
  for (const n of rest) t.deepEqual(n.applied, ["before", "after"]);
  await waitFor(() => rest.some((n) => n.transport.stats.connectFailures + n.transport.stats.streamsFailed > 0), "failure seen");
});

test("a node that missed compacted entries catches up through a chunked snapshot over the wire", async (t) => {
  const nodes = await cluster(t);
  await waitFor(() => agreedLeader(nodes) !== undefined, "a leader");
  const leader = agreedLeader(nodes)!;
  const lagger = nodes.find((n) => n !== leader)!;
  const lagAddr = lagger.transport.address!;
  await lagger.stop();
  const values = Array.from({ length: 30 }, (_, i) => `entry-${i}`);
  const live = nodes.filter((n) => n !== lagger);
  await proposeAll(live, values);
  await waitFor(() => live.every((n) => n.applied.length === values.length), "majority applied");
  for (const n of live) n.compact();

  // The same node restarts on its durable storage, at its old address.
  const restarted = new GrpcRaftNode(lagger.id, [1, 2, 3], certs.dir, { storage: lagger.storage, listenAddress: lagAddr });
  t.teardown(() => restarted.stop());
  await restarted.start();
  for (const n of live) restarted.transport.addPeer(n.id, n.transport.address!);
  await waitFor(() => restarted.applied.length === values.length, "lagger caught up");
  t.deepEqual(restarted.applied, values);
  t.true(restarted.snapshotsApplied >= 1, "through a snapshot");
  const size = live[0]!.storage.snapshot().data.byteLength;
  t.true(restarted.snapChunks >= Math.ceil(size / 64), `the ${size}-byte snapshot came in 64-byte chunks`);
});
