// One simulation run: a cluster of SimNodes on a simulated network, driven
// in virtual time by a seeded PRNG. Every random choice (faults, client
// actions, each node's randomized election timeout) derives from the seed,
// so a seed replays exactly. Checkers run on every observation; a broken
// invariant ends the run with a Violation.

import { ConfChangeType, type ConfState, type Message, MessageType, type NodeId, StateType } from "../../node/raft/types.js";
import { Checker, checkDurability, checkLogMatching, type LogView, Violation } from "./checker.js";
import { chooseProfile, type FaultProfile, PartitionSchedule } from "./faults.js";
import { CALM, Network } from "./network.js";
import {
  bootstrapSnapshot, CRASH_POINTS, describeConf, type NodeEnv, type NodeParams, SimNode, STATE_NAMES,
} from "./node.js";
import { Prng } from "./prng.js";
import type { RaftLib } from "./raft-lib.js";
import { encodeProposal } from "./state-machine.js";
import { Trace } from "./trace.js";

export interface RunOptions {
  readonly seed: number;
  readonly nodes: number;
  readonly lib: RaftLib;
  /** Ticks of faults and client traffic before healing (default DEFAULT_STEPS). */
  readonly steps?: number;
  /** Print each trace line (a replay). */
  readonly print?: (line: string) => void;
  /** Also trace every message delivery. */
  readonly verbose?: boolean;
  /** Overrides of the seed's drawn fault profile and raft tuning (for focused experiments and tests). */
  readonly profile?: Partial<FaultProfile>;
  /** Make the seed an election storm (see faults.ts). */
  readonly storm?: boolean;
  readonly params?: Partial<NodeParams>;
}

export interface RunStats {
  ticks: number;
  leaders: number;
  crashes: number;
  partitions: number;
  confChanges: number;
  confChangesApplied: number;
  snapshotsInstalled: number;
  compactions: number;
  acknowledged: number;
  reads: number;
  commit: number;
  messages: number;
  /** Driver calls that sent messages, and Readys that applied entries, before their write completed. */
  sentWhileWriting: number;
  appliedWhileWriting: number;
}

export interface RunResult {
  readonly seed: number;
  readonly nodes: number;
  readonly violation: Violation | null;
  /** Digest of the whole trace: equal for two runs of one seed. */
  readonly digest: string;
  readonly stats: RunStats;
  readonly lastLines: readonly string[];
}

export const DEFAULT_STEPS = 2000;
/** Messages per tick above which a run counts as a message storm. */
const MESSAGES_PER_TICK_LIMIT = 200;
/** After healing everything: ticks allowed without any progress, and in total, to reach quiescence. */
const SETTLE_TICKS = 600;
const SETTLE_MAX_TICKS = 20_000;

export function runSeed(opts: RunOptions): RunResult {
  const sim = new Simulation(opts);
  let violation: Violation | null = null;
  try {
    sim.run(opts.steps ?? DEFAULT_STEPS);
  } catch (err) {
    violation = err instanceof Violation ? err : new Violation("Raft Exception", describeError(err));
    sim.trace.add(sim.now, null, `VIOLATION ${violation.message}`);
  }
  return {
    seed: opts.seed, nodes: opts.nodes, violation, digest: sim.trace.digest(), stats: sim.stats, lastLines: sim.trace.lastLines(),
  };
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}${err.stack ? `\n${err.stack.split("\n").slice(1, 6).join("\n")}` : ""}`;
  return String(err);
}

function isDropped(err: unknown): boolean {
  return err instanceof Error && err.name === "ErrProposalDropped";
}

class Simulation {
  readonly trace: Trace;
  readonly checker = new Checker();
  readonly stats: RunStats = {
    ticks: 0, leaders: 0, crashes: 0, partitions: 0, confChanges: 0, confChangesApplied: 0, snapshotsInstalled: 0, compactions: 0,
    acknowledged: 0, reads: 0, commit: 0, messages: 0, sentWhileWriting: 0, appliedWhileWriting: 0,
  };
  now = 0;
  private readonly rng: Prng;
  private readonly profile: FaultProfile;
  private readonly net: Network;
  private readonly partitions: PartitionSchedule;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly restartAt = new Map<NodeId, number>();
  /** Fresh leaders doomed to crash at a given time (Figure 8 schedules). */
  private readonly crashAt = new Map<NodeId, number>();
  private readonly acknowledged = new Set<number>();
  private readonly readsIssuedAt = new Map<number, number>();
  /** The most bytes of a snapshot each leader heard a follower hold: key "leader<follower term@index" (MsgSnapResp acks delivered). */
  private readonly snapshotAcks = new Map<string, number>();
  /** How many times one of snapshotAcks' high marks rose. */
  private snapshotAckRaises = 0;
  private readonly env: NodeEnv;
  private nextProposal = 1;
  private nextRead = 1;
  private nextNodeId: NodeId;
  private faultsOn = true;
  /** A runaway guard: far above what a healthy run sends (a retransmission loop is a bug, and must not hang the CLI). */
  private readonly maxMessages: number;

  constructor(private readonly opts: RunOptions) {
    this.trace = new Trace(opts.print ?? null, opts.verbose ?? false);
    const root = new Prng(opts.seed);
    this.rng = root.fork("actions");
    this.profile = { ...chooseProfile(root.fork("profile"), opts.storm ?? false), ...opts.profile };
    this.net = new Network(root.fork("network"), this.profile.net);
    this.partitions = new PartitionSchedule(root.fork("partitions"), this.profile);
    this.env = this.makeEnv({ ...chooseNodeParams(root.fork("params"), this.profile), ...opts.params });
    this.nextNodeId = opts.nodes + 1;
    this.maxMessages = MESSAGES_PER_TICK_LIMIT * ((opts.steps ?? DEFAULT_STEPS) + SETTLE_TICKS);
    // (The settle phase may run longer than SETTLE_TICKS, but a healthy one sends far fewer messages.)
    const voters = Array.from({ length: opts.nodes }, (_, i) => i + 1);
    for (const id of voters) this.addNode(id, bootstrapSnapshot(voters));
  }

  run(steps: number): void {
    this.trace.add(0, null, `seed ${this.opts.seed}: ${this.opts.nodes} nodes, profile ${JSON.stringify(this.profile)}`);
    for (const n of this.nodes.values()) n.start();
    for (let i = 0; i < steps; i++) this.step();
    this.settle();
  }

  private makeEnv(params: NodeParams): NodeEnv {
    return {
      lib: this.opts.lib,
      checker: this.checker,
      params,
      now: () => this.now,
      trace: (node, event) => this.trace.add(this.now, node, event),
      send: (from, m) => this.send(from, m),
      acknowledge: (p) => this.acknowledged.add(p),
      readDone: (node, ctx, index) => this.readDone(node, ctx, index),
      crashed: (node) => this.scheduleRestart(node),
      elected: (node) => this.maybeDoomLeader(node),
      count: (stat) => { this.stats[stat]++; },
    };
  }

  private addNode(id: NodeId, bootstrap: ReturnType<typeof bootstrapSnapshot> | null): SimNode {
    const node = new SimNode(id, this.env, this.rng.fork(`node-${id}`), bootstrap);
    this.nodes.set(id, node);
    return node;
  }

  /** One tick of virtual time: deliveries, faults, client actions, ticks, Readys, checks. */
  private step(): void {
    this.now++;
    this.stats.ticks++;
    this.deliver();
    if (this.faultsOn) this.injectFaults();
    this.restartDue();
    if (this.faultsOn) this.clientActions();
    for (const n of this.nodes.values()) n.raw?.tick();
    this.drainReadies();
    this.checkLeaders();
  }

  private deliver(): void {
    for (const m of this.net.takeDue(this.now)) {
      const node = this.nodes.get(m.to);
      const raw = node?.raw;
      if (raw == null) continue;
      if (this.trace.verbose) this.trace.add(this.now, m.to, `recv ${describeMsg(m)}`);
      this.observeSnapshotAck(m);
      try {
        raw.step(m);
      } catch (err) {
        if (!isDropped(err)) throw err;
      }
    }
  }

  /** A MsgSnapResp ack (index = bytes held, rejectHint = the snapshot's index) raises its transfer's high mark. */
  private observeSnapshotAck(m: Message): void {
    if (m.type !== MessageType.SnapResp || m.reject) return;
    const key = `${m.to}<${m.from} ${m.term}@${m.rejectHint}`;
    if (m.index <= (this.snapshotAcks.get(key) ?? 0)) return;
    this.snapshotAcks.set(key, m.index);
    this.snapshotAckRaises++;
  }

  private send(from: SimNode, m: Message): void {
    if (++this.stats.messages > this.maxMessages) {
      throw new Violation("Liveness", `message storm: more than ${this.maxMessages} messages sent`);
    }
    if (this.trace.verbose) this.trace.add(this.now, from.id, `send ${describeMsg(m)}`);
    const outcome = this.net.send(m, this.now);
    if (outcome !== "cut") return;
    // The transport notices a broken link: tell raft, as a real transport would.
    if (m.type === MessageType.App) from.defer(() => from.raw?.reportUnreachable(m.to));
    if (m.type === MessageType.Snap) from.defer(() => from.raw?.reportSnapshot(m.to, false));
  }

  /** Processes Readys until none is left (bounded: messages go to the network, not straight to nodes). */
  private drainReadies(): void {
    for (let round = 0; round < 8; round++) {
      let any = false;
      for (const n of this.nodes.values()) any = n.handleReady() || any;
      if (!any) break;
    }
    for (const n of this.nodes.values()) {
      if (n.crashPending !== null && n.live) n.crash(n.isWriting ? "while writing a Ready (its write is lost)" : "between Readys");
    }
  }

  private checkLeaders(): void {
    for (const n of this.nodes.values()) {
      if (!n.live || n.state !== StateType.Leader) continue;
      this.checker.checkLeaderCompleteness({ id: n.id, term: n.hardState().term, log: n.log });
    }
  }

  // ---- faults ----

  private injectFaults(): void {
    const change = this.partitions.step(this.now, this.net, this.activeIds());
    if (change !== null) {
      if (change.startsWith("partition")) this.stats.partitions++;
      this.trace.add(this.now, null, change);
    }
    if (this.rng.chance(this.profile.crashRate)) this.scheduleCrash();
    for (const [id, at] of this.crashAt) {
      if (at > this.now) continue;
      this.crashAt.delete(id);
      const n = this.nodes.get(id)!;
      if (n.live && n.crashPending === null && this.canLose(id)) n.crashPending = this.rng.pick(CRASH_POINTS);
    }
  }

  private maybeDoomLeader(id: NodeId): void {
    if (this.faultsOn && this.rng.chance(this.profile.freshLeaderCrashRate)) this.crashAt.set(id, this.now + this.rng.range(0, 3));
  }

  /** Picks a node to crash, keeping a quorum of live voters possible. */
  private scheduleCrash(): void {
    const victims = this.liveNodes().filter((n) => n.crashPending === null && this.canLose(n.id));
    if (victims.length === 0) return;
    const leader = this.leader();
    const hitLeader = leader !== null && victims.includes(leader) && this.rng.chance(this.profile.leaderCrashBias);
    const v = hitLeader ? leader : this.rng.pick(victims);
    v.crashPending = this.rng.pick(CRASH_POINTS);
  }

  private canLose(id: NodeId): boolean {
    const { voters } = this.referenceConf();
    if (!voters.includes(id)) return true;
    const live = voters.filter((v) => this.nodes.get(v)?.live === true && this.nodes.get(v)?.crashPending === null).length;
    return live - 1 >= Math.floor(voters.length / 2) + 1;
  }

  private scheduleRestart(id: NodeId): void {
    this.stats.crashes++;
    const [lo, hi] = this.profile.downtime;
    this.restartAt.set(id, this.now + this.rng.range(lo, hi));
  }

  private restartDue(): void {
    for (const [id, at] of this.restartAt) {
      if (at > this.now && this.faultsOn) continue;
      this.restartAt.delete(id);
      const n = this.nodes.get(id)!;
      if (!n.live && !n.removed) n.start();
    }
  }

  // ---- client actions ----

  private clientActions(): void {
    const p = this.profile;
    if (this.rng.chance(p.proposeRate)) this.propose();
    if (this.rng.chance(p.readRate)) this.read();
    if (this.rng.chance(p.confChangeRate)) this.changeMembership();
    if (this.rng.chance(p.transferRate)) this.transfer();
  }

  private propose(): void {
    const live = this.liveNodes();
    if (live.length === 0) return;
    const n = this.rng.pick(live);
    const id = this.nextProposal++;
    try {
      n.raw!.propose(encodeProposal(id));
      this.trace.add(this.now, n.id, `propose p${id}`);
    } catch (err) {
      if (!isDropped(err)) throw err;
    }
  }

  private read(): void {
    const live = this.liveNodes();
    if (live.length === 0) return;
    const n = this.rng.pick(live);
    const id = this.nextRead++;
    this.readsIssuedAt.set(id, this.checker.highestCommit());
    n.raw!.readIndex(new TextEncoder().encode(`r${id}`));
  }

  private readDone(node: NodeId, ctx: Uint8Array, index: number): void {
    const id = Number(new TextDecoder().decode(ctx).slice(1));
    const issuedAt = this.readsIssuedAt.get(id);
    if (issuedAt === undefined) throw new Violation("Linearizable Read", `node ${node} answered an unknown read context`);
    this.checker.observeRead(node, issuedAt, index);
    this.stats.reads++;
    this.trace.add(this.now, node, `read r${id} index=${index} (issued at commit ${issuedAt})`);
  }

  private transfer(): void {
    const leader = this.leader();
    if (leader === null) return;
    const others = leader.confState.voters.filter((v) => v !== leader.id);
    if (others.length === 0) return;
    const to = this.rng.pick(others);
    this.trace.add(this.now, leader.id, `transfer leadership to ${to}`);
    leader.raw!.transferLeadership(to);
  }

  /** Adds a learner, promotes a learner or removes a member, one change at a time. */
  private changeMembership(): void {
    const leader = this.leader();
    if (leader === null) return;
    const cs = leader.confState;
    const n = this.opts.nodes;
    const options: (() => void)[] = [];
    if (cs.voters.length + cs.learners.length < n + 2) options.push(() => this.proposeAdd(leader));
    if (cs.learners.length > 0 && cs.voters.length < n + 1) {
      options.push(() => this.proposeChange(leader, ConfChangeType.PromoteLearner, this.rng.pick(cs.learners)));
    }
    if (cs.learners.length > 0) options.push(() => this.proposeChange(leader, ConfChangeType.RemoveNode, this.rng.pick(cs.learners)));
    if (cs.voters.length > (n === 3 ? 3 : 4)) {
      options.push(() => this.proposeChange(leader, ConfChangeType.RemoveNode, this.rng.pick(cs.voters)));
    }
    if (options.length > 0) this.rng.pick(options)();
  }

  private proposeAdd(leader: SimNode): void {
    const id = this.nextNodeId;
    if (!this.proposeChange(leader, ConfChangeType.AddLearner, id)) return;
    this.nextNodeId++;
    this.addNode(id, null).start();
  }

  private proposeChange(leader: SimNode, type: ConfChangeType, nodeId: NodeId): boolean {
    try {
      leader.raw!.proposeConfChange({ type, nodeId, context: new Uint8Array(0) });
    } catch (err) {
      if (isDropped(err)) return false;
      throw err;
    }
    this.stats.confChanges++;
    this.trace.add(this.now, leader.id, `propose conf change ${ConfChangeType[type]} ${nodeId} (now ${describeConf(leader.confState)})`);
    return true;
  }

  // ---- the end: heal, restart, settle, final checks ----

  private settle(): void {
    this.faultsOn = false;
    this.partitions.healAll(this.net);
    this.net.params = CALM;
    for (const n of this.nodes.values()) n.crashPending = null;
    this.trace.add(this.now, null, "heal all, restart crashed nodes, settle");
    // A slow configuration (one entry per MsgApp, one in flight) may have a long
    // backlog to drain: keep going while members still apply entries, or
    // still take in the leader's log (a new leader commits nothing until a
    // quorum holds its whole log, however long the backlog of an old term).
    // Progress is a new high of any one count: the entries applied, one
    // member's agreement with one leader, or the bytes of one snapshot
    // transfer a follower acknowledged (a large snapshot in small chunks
    // can take longer than SETTLE_TICKS: seeds 34000117 and 34000174 with
    // --steps 20000). A sum over members is not monotonic: a member removed
    // takes its whole agreement out of it.
    const start = this.now;
    const best = new Map<string, number>();
    let lastProgress = this.now;
    for (;;) {
      this.step();
      const leader = this.quiescentLeader();
      if (leader !== null) return this.finalChecks(leader);
      for (const [key, n] of this.progressCounts()) {
        if (n <= (best.get(key) ?? -1)) continue;
        best.set(key, n);
        lastProgress = this.now;
      }
      if (this.now - lastProgress >= SETTLE_TICKS) {
        throw new Violation("Liveness",
          `no quiescent cluster and no progress for ${SETTLE_TICKS} ticks after healing everything; ${this.describeCluster()}`);
      }
      if (this.now - start >= SETTLE_MAX_TICKS) {
        throw new Violation("Liveness", `no quiescent cluster ${SETTLE_MAX_TICKS} ticks after healing everything; ${this.describeCluster()}`);
      }
    }
  }

  /** One line per node for a Liveness report: role, term, commit, applied, log bounds, membership view. */
  private describeCluster(): string {
    const lines = [...this.nodes.values()].map((n) => {
      if (!n.live) return `n${n.id}: ${n.removed ? "removed" : "down"}`;
      const hs = n.hardState();
      return `n${n.id}: ${STATE_NAMES[n.state] ?? n.state} term=${hs.term} commit=${hs.commit} applied=${n.sm.applied} `
        + `log=[${n.storage.firstIndex()},${n.storage.lastIndex()}] ${describeConf(n.confState)}`;
    });
    return `nodes:\n${lines.join("\n")}`;
  }

  /** The counts whose growth is progress: entries applied by the live nodes, the raises of a snapshot transfer's acknowledged bytes, and each live member's agreed prefix with the leader's log (keyed by leader and member). */
  private progressCounts(): [string, number][] {
    const counts: [string, number][] = [["applied", this.totalApplied()], ["snapshot acks", this.snapshotAckRaises]];
    const leader = this.leader();
    if (leader === null) return counts;
    for (const id of members(leader.confState)) {
      const m = this.nodes.get(id);
      if (m?.live === true && m !== leader) counts.push([`${leader.id}>${id}`, agreedPrefix(leader.log, m.log)]);
    }
    return counts;
  }

  private totalApplied(): number {
    let sum = 0;
    for (const n of this.nodes.values()) if (n.live) sum += n.sm.applied;
    return sum;
  }

  /** The leader, if the cluster is quiescent: every member is live and has applied the leader's whole log. */
  private quiescentLeader(): SimNode | null {
    const leader = this.leader();
    if (leader === null) return null;
    const last = leader.storage.lastIndex();
    if (leader.hardState().commit !== last) return null;
    for (const id of members(leader.confState)) {
      const m = this.nodes.get(id);
      if (m?.live !== true || m.sm.applied !== last || m.storage.lastIndex() !== last) return null;
    }
    return leader;
  }

  private finalChecks(leader: SimNode): void {
    const ms = members(leader.confState).map((id) => this.nodes.get(id)!);
    for (let i = 0; i < ms.length; i++) {
      for (let j = i + 1; j < ms.length; j++) checkLogMatching(ms[i]!, ms[j]!);
    }
    checkDurability(this.acknowledged, ms.map((m) => ({ id: m.id, has: (p: number) => m.sm.has(p) })));
    for (const n of this.liveNodes()) {
      const refused = n.raw!.status().refusedTruncations ?? 0;
      if (refused > 0) {
        throw new Violation("Leader Completeness", `node ${n.id} refused ${refused} append(s) that would have replaced committed entries`);
      }
    }
    this.stats.acknowledged = this.acknowledged.size;
    this.stats.commit = leader.hardState().commit;
    this.trace.add(this.now, leader.id,
      `quiescent: leader ${leader.id} term ${leader.hardState().term}, commit ${this.stats.commit}, ${describeConf(leader.confState)}, `
      + `${this.acknowledged.size} proposals acknowledged, all applied everywhere`);
  }

  // ---- helpers ----

  private liveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.live);
  }

  /** Nodes not removed (live or crashed). */
  private activeIds(): NodeId[] {
    return [...this.nodes.values()].filter((n) => !n.removed).map((n) => n.id);
  }

  /** The live leader of the highest term, if any. */
  private leader(): SimNode | null {
    let best: SimNode | null = null;
    for (const n of this.nodes.values()) {
      if (!n.live || n.state !== StateType.Leader) continue;
      if (best === null || n.hardState().term > best.hardState().term) best = n;
    }
    return best;
  }

  /** The membership as known by the live node that applied the most. */
  private referenceConf(): ConfState {
    let best: SimNode | null = null;
    for (const n of this.nodes.values()) {
      if (n.live && (best === null || n.sm.applied > best.sm.applied)) best = n;
    }
    return best?.confState ?? { voters: [], learners: [] };
  }
}

/**
 * The last index at which two logs hold the same term, searched from the
 * higher of their snapshot indexes (whose terms both know) up: by Log
 * Matching, logs that agree at i agree below it, so the predicate is a
 * prefix and a binary search finds its end; 0 when they differ there.
 */
function agreedPrefix(a: LogView, b: LogView): number {
  let lo = Math.max(a.snapshotIndex(), b.snapshotIndex());
  let hi = Math.min(a.lastIndex(), b.lastIndex());
  if (lo > hi || a.term(lo) !== b.term(lo)) return 0;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (a.term(mid) === b.term(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function members(cs: ConfState): NodeId[] {
  return [...cs.voters, ...cs.learners];
}

/** Per-seed raft tuning: small messages and snapshot chunks so that batching and chunking paths run. */
function chooseNodeParams(rng: Prng, profile: FaultProfile): NodeParams {
  const maxSizePerMsg = rng.pick([1, 64, 256, 4096]);
  return {
    electionTick: 10,
    heartbeatTick: 1,
    maxSizePerMsg: profile.storm ? 1 : maxSizePerMsg,
    maxInflightMsgs: rng.pick([1, 4, 64]),
    maxSnapshotChunkBytes: rng.pick([64, 200, 1024]),
    snapshotEvery: rng.range(5, 40),
    compactKeep: rng.range(0, 5),
    maxWriteDelay: profile.maxWriteDelay,
  };
}

export function describeMsg(m: Message): string {
  const parts = [`${MessageType[m.type]} ${m.from}->${m.to} term=${m.term}`];
  if (m.logTerm !== 0 || m.index !== 0) parts.push(`log=${m.logTerm}/${m.index}`);
  if (m.entries.length > 0) parts.push(`entries=${m.entries[0]!.index}..${m.entries[m.entries.length - 1]!.index}`);
  if (m.commit !== 0) parts.push(`commit=${m.commit}`);
  if (m.reject) parts.push(`REJECT hint=${m.rejectHint}`);
  if (m.snapshot !== null) parts.push(`snap@${m.snapshot.metadata.index} off=${m.snapshot.offset}/${m.snapshot.totalSize}${m.snapshot.done ? " done" : ""}`);
  return parts.join(" ");
}
