// The Raft state machine (modelled on etcd raft's raft.go): terms, roles,
// elections with PreVote and CheckQuorum, and the follower/candidate side of
// replication. The leader side lives in leader.ts. Pure and deterministic:
// time advances only through tick(), randomness only through config.randomInt.

import { applyToConfState } from "./confchange.js";
import { type Config, type Logger, NOOP_LOGGER, validateConfig } from "./config.js";
import { CampaignType, TRANSFER_CONTEXT, isTransferContext } from "./campaign.js";
import { stepFollower } from "./follower.js";
import { bcastAppend, flushReadHeartbeat, maybeCommit, maybeSendAppend, releasePendingReadIndexMessages, stepLeader } from "./leader.js";
import { NO_LIMIT, RaftLog } from "./log.js";
import { ReadOnly } from "./read-only.js";
import { SnapshotReceiver } from "./snapshot-recv.js";
import { ProgressTracker, VoteResult } from "./tracker.js";
import {
  type ConfChange,
  type ConfState,
  type Entry,
  EntryType,
  ErrProposalDropped,
  type HardState,
  type Message,
  MessageType,
  NONE,
  type NodeId,
  RaftPanic,
  type ReadState,
  type Snapshot,
  type SoftState,
  StateType,
  isEmptyHardState,
  message,
} from "./types.js";

const NO_ENTRIES: readonly Entry[] = [];
const NO_BYTES = new Uint8Array(0);

type OutMessage = Partial<Message> & Pick<Message, "type" | "to">;

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  state = StateType.Follower;
  readonly log: RaftLog;
  readonly prs: ProgressTracker;
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  randomizedElectionTimeout = 0;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly maxMsgSize: number;
  readonly maxUncommittedSize: number;
  readonly maxSnapshotChunkBytes: number;
  uncommittedSize = 0;
  leadTransferee: NodeId = NONE;
  /** Index of the last conf change (or of the leader's no-op); no new change until it is applied. */
  pendingConfIndex = 0;
  readOnly = new ReadOnly();
  /** ReadIndex requests waiting for this leader to commit an entry of its term. */
  pendingReadIndexMessages: Message[] = [];
  /** A ReadIndex request arrived since the last Ready: one heartbeat round is owed (flushReadHeartbeat). */
  readHeartbeatDue = false;
  readonly snapRecv = new SnapshotReceiver();
  /** Appends refused because they would have replaced committed entries. */
  refusedTruncations = 0;
  readonly logger: Logger;
  private readonly randomInt: (maxExclusive: number) => number;

  constructor(c: Config) {
    validateConfig(c);
    this.id = c.id;
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.checkQuorum = c.checkQuorum ?? true;
    this.preVote = c.preVote ?? true;
    this.maxMsgSize = c.maxSizePerMsg ?? 1024 * 1024;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize ?? 0;
    this.maxSnapshotChunkBytes = c.maxSnapshotChunkBytes ?? 512 * 1024;
    this.logger = c.logger ?? NOOP_LOGGER;
    this.randomInt = c.randomInt;
    this.log = new RaftLog(c.storage);
    this.prs = new ProgressTracker(c.maxInflightMsgs ?? 256, c.maxInflightBytes ?? 0);
    const { hardState, confState } = c.storage.initialState();
    this.prs.applyConfState(confState, this.log.lastIndex() + 1);
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (c.applied !== undefined && c.applied > 0) this.restoreApplied(c.applied);
    this.becomeFollower(this.term, NONE);
  }

  /**
   * An applied entry was committed, so a commit index that was not synced
   * before a crash is raised to `applied`; an applied index past the log means lost entries.
   */
  private restoreApplied(applied: number): void {
    if (applied > this.log.lastIndex()) {
      throw new RaftPanic(`config.applied ${applied} is past last index ${this.log.lastIndex()}: log lost`);
    }
    this.log.commitTo(applied);
    this.log.appliedTo(applied);
  }

  private loadState(hs: HardState): void {
    if (hs.commit > this.log.lastIndex()) {
      throw new RaftPanic(`hard state commit ${hs.commit} is past last index ${this.log.lastIndex()}`);
    }
    this.log.committed = Math.max(this.log.committed, hs.commit);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, state: this.state };
  }

  /** A voter with no snapshot pending may campaign. */
  promotable(): boolean {
    return this.prs.isVoter(this.id) && !this.log.hasPendingSnapshot();
  }

  // ---- sending ----

  /** Queues a message; sets from and (except for votes and forwarded requests) term. */
  send(fields: OutMessage): void {
    const t = fields.type;
    const isVote = t === MessageType.Vote || t === MessageType.PreVote ||
      t === MessageType.VoteResp || t === MessageType.PreVoteResp;
    let term = fields.term ?? 0;
    // (A rejection may carry term 0: a node that has never seen a term rejects a pre-vote.)
    if (isVote && term === 0 && !fields.reject) throw new RaftPanic(`term must be set for ${MessageType[t]}`);
    if (!isVote && term !== 0) throw new RaftPanic(`term must not be set for ${MessageType[t]}`);
    if (!isVote && t !== MessageType.Prop && t !== MessageType.ReadIndex) term = this.term;
    const from = fields.from !== undefined && fields.from !== NONE ? fields.from : this.id;
    // Built field by field (one object shape): this is the hottest allocation.
    this.msgs.push({
      type: t, from, to: fields.to, term, logTerm: fields.logTerm ?? 0, index: fields.index ?? 0,
      entries: fields.entries ?? NO_ENTRIES, commit: fields.commit ?? 0, reject: fields.reject ?? false,
      rejectHint: fields.rejectHint ?? 0, snapshot: fields.snapshot ?? null, context: fields.context ?? NO_BYTES,
    });
  }

  /** Sends the heartbeat round owed to the ReadIndex requests stepped since the last Ready (leader.ts). */
  flushReadHeartbeat(): void {
    flushReadHeartbeat(this);
  }

  // ---- role transitions ----

  private reset(term: number): void {
    if (term < this.term) throw new RaftPanic(`term would decrease from ${this.term} to ${term}`);
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + this.randomInt(this.electionTimeout);
    this.abortLeaderTransfer();
    this.prs.resetVotes();
    this.prs.resetProgress(this.log.lastIndex(), this.id);
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly();
    this.pendingReadIndexMessages = [];
    this.readHeartbeatDue = false;
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
    this.logger.debug(`${this.id} became follower at term ${this.term}`);
  }

  becomePreCandidate(): void {
    if (this.state === StateType.Leader) throw new RaftPanic("invalid transition [leader -> pre-candidate]");
    // Does not change term or vote: a pre-election must not disturb the cluster.
    this.prs.resetVotes();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
    this.logger.debug(`${this.id} became pre-candidate at term ${this.term}`);
  }

  becomeCandidate(): void {
    if (this.state === StateType.Leader) throw new RaftPanic("invalid transition [leader -> candidate]");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.logger.debug(`${this.id} became candidate at term ${this.term}`);
  }

  /** Appends the no-op of the new term and starts replicating it. */
  becomeLeader(): void {
    if (this.state === StateType.Follower) throw new RaftPanic("invalid transition [follower -> leader]");
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.prs.progress.get(this.id)!;
    self.becomeReplicate();
    self.recentActive = true;
    if (!this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }])) {
      throw new RaftPanic("empty entry was dropped");
    }
    // No conf change until an entry of this term (the no-op) is applied.
    this.pendingConfIndex = this.log.lastIndex();
    this.logger.info(`${this.id} became leader at term ${this.term}`);
    bcastAppend(this);
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  // ---- ticks ----

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(message({ type: MessageType.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(message({ type: MessageType.CheckQuorum, from: this.id }));
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(message({ type: MessageType.Beat, from: this.id }));
    }
  }

  // ---- elections ----

  hup(t: CampaignType): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) {
      this.logger.warn(`${this.id} is not promotable and cannot campaign`);
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      this.logger.warn(`${this.id} cannot campaign at term ${this.term}: unapplied conf changes`);
      return;
    }
    this.campaign(t);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    return this.log.slice(lo, this.log.committed + 1, NO_LIMIT).some((e) => e.type === EntryType.ConfChange);
  }

  campaign(t: CampaignType): void {
    let voteType: MessageType;
    let term: number;
    if (t === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteType = MessageType.PreVote;
      term = this.term + 1; // the term we would campaign in; ours stays unchanged
    } else {
      this.becomeCandidate();
      voteType = MessageType.Vote;
      term = this.term;
    }
    if (this.poll(this.id, true) === VoteResult.Won) {
      // Single-voter cluster: won without asking anyone.
      if (t === CampaignType.PreElection) this.campaign(CampaignType.Election);
      else this.becomeLeader();
      return;
    }
    const context = t === CampaignType.Transfer ? TRANSFER_CONTEXT : new Uint8Array(0);
    for (const id of [...this.prs.voters].sort((a, b) => a - b)) {
      if (id === this.id) continue;
      this.send({
        type: voteType, to: id, term, index: this.log.lastIndex(), logTerm: this.log.lastTerm(), context,
      });
    }
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    this.prs.recordVote(id, granted);
    return this.prs.tallyVotes().result;
  }

  // ---- step ----

  /**
   * Processes one message. Throws ErrProposalDropped for a proposal that
   * cannot be accepted; RaftPanic on a broken invariant.
   */
  step(m: Message): void {
    if (m.term > this.term) {
      if (!this.stepHigherTerm(m)) return;
    } else if (m.term !== 0 && m.term < this.term) {
      this.stepLowerTerm(m);
      return;
    }
    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
        return;
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVoteRequest(m);
        return;
      default:
        this.stepByState(m);
    }
  }

  /** Returns false if the message must be ignored. */
  private stepHigherTerm(m: Message): boolean {
    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      const force = isTransferContext(m.context);
      const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
      if (!force && inLease) {
        // Leader lease: we heard from a leader recently, so this candidate cannot win legitimately.
        this.logger.debug(`${this.id} ignored ${MessageType[m.type]} from ${m.from} at term ${m.term}: lease`);
        return false;
      }
    }
    if (m.type === MessageType.PreVote) return true; // never change term for a pre-vote
    if (m.type === MessageType.PreVoteResp && !m.reject) return true; // term changes when the pre-election wins
    const fromLeader = m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap;
    this.becomeFollower(m.term, fromLeader ? m.from : NONE);
    return true;
  }

  private stepLowerTerm(m: Message): void {
    if ((this.checkQuorum || this.preVote) && (m.type === MessageType.App || m.type === MessageType.Heartbeat)) {
      // A stale leader (e.g. rejoining after a partition): tell it our term so it steps down.
      this.send({ type: MessageType.AppResp, to: m.from });
    } else if (m.type === MessageType.PreVote) {
      this.send({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true });
    }
  }

  private handleVoteRequest(m: Message): void {
    const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
    const canVote = this.vote === m.from || (this.vote === NONE && this.lead === NONE) ||
      (m.type === MessageType.PreVote && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      this.send({ type: respType, to: m.from, term: m.term });
      if (m.type === MessageType.Vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, to: m.from, term: this.term, reject: true });
    }
  }

  private stepByState(m: Message): void {
    switch (this.state) {
      case StateType.Leader: stepLeader(this, m); return;
      case StateType.Follower: stepFollower(this, m); return;
      default: this.stepCandidate(m);
    }
  }

  private stepCandidate(m: Message): void {
    const myRespType = this.state === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        throw new ErrProposalDropped(`${this.id} is a candidate: no leader at term ${this.term}`);
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        stepFollower(this, m);
        return;
      case myRespType: {
        const res = this.poll(m.from, !m.reject);
        if (res === VoteResult.Won) {
          if (this.state === StateType.PreCandidate) this.campaign(CampaignType.Election);
          else this.becomeLeader();
        } else if (res === VoteResult.Lost) {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  /** Installs a snapshot from the leader; false if it was not needed. */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.log.committed) return false;
    if (this.state !== StateType.Follower) {
      this.becomeFollower(this.term + 1, NONE); // defensive: only followers install snapshots
      return false;
    }
    if (this.log.matchTerm(s.metadata.index, s.metadata.term)) {
      this.log.commitTo(s.metadata.index); // we already have the entries: fast-forward commit
      return false;
    }
    this.log.restore(s);
    this.prs.applyConfState({ voters: [], learners: [] }, this.log.lastIndex() + 1);
    this.prs.applyConfState(s.metadata.confState, this.log.lastIndex() + 1);
    this.logger.info(`${this.id} restored snapshot at index ${s.metadata.index} term ${s.metadata.term}`);
    return true;
  }

  // ---- leader helpers shared with leader.ts ----

  /** Assigns term and indexes and appends to the leader's log; false if the uncommitted cap is reached. */
  appendEntry(es: readonly Entry[]): boolean {
    const li = this.log.lastIndex();
    const ents = es.map((e, i) => ({ ...e, term: this.term, index: li + 1 + i }));
    if (!this.increaseUncommittedSize(ents)) {
      this.logger.debug(`${this.id} dropped proposal: uncommitted size limit ${this.maxUncommittedSize} reached`);
      return false;
    }
    const last = this.log.append(ents);
    this.prs.progress.get(this.id)?.maybeUpdate(last);
    maybeCommit(this);
    return true;
  }

  private increaseUncommittedSize(ents: readonly Entry[]): boolean {
    const s = payloadSize(ents);
    if (this.maxUncommittedSize > 0 && this.uncommittedSize > 0 && s > 0 &&
        this.uncommittedSize + s > this.maxUncommittedSize) {
      return false;
    }
    this.uncommittedSize += s;
    return true;
  }

  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.state !== StateType.Leader) return;
    this.uncommittedSize = Math.max(0, this.uncommittedSize - payloadSize(ents));
  }

  // ---- membership ----

  /** Applies a committed ConfChange; an invalid change is ignored (identically on every node). */
  applyConfChange(cc: ConfChange): ConfState {
    const next = applyToConfState(this.prs.confState(), cc);
    if (typeof next === "string") {
      this.logger.warn(`${this.id} ignored conf change: ${next}`);
      return this.prs.confState();
    }
    this.switchToConfig(next);
    return next;
  }

  private switchToConfig(cs: ConfState): void {
    this.prs.applyConfState(cs, this.log.lastIndex() + 1);
    const self = this.prs.progress.get(this.id);
    if ((self === undefined || self.isLearner) && this.state === StateType.Leader) {
      this.logger.info(`${this.id} was removed from the configuration: stepping down`);
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.state !== StateType.Leader) return;
    if (maybeCommit(this)) {
      releasePendingReadIndexMessages(this);
      bcastAppend(this);
    } else for (const id of this.prs.memberIds()) if (id !== this.id) maybeSendAppend(this, id, false);
    if (this.leadTransferee !== NONE && !this.prs.isVoter(this.leadTransferee)) this.abortLeaderTransfer();
  }

  /** Validates a conf change a leader is about to propose; returns an error or undefined. */
  confChangeRefusal(cc: ConfChange): string | undefined {
    if (this.state !== StateType.Leader) return `${this.id} is not the leader`;
    if (this.leadTransferee !== NONE) return "leadership transfer in progress";
    if (this.pendingConfIndex > this.log.applied) {
      return `conf change pending at index ${this.pendingConfIndex} (applied ${this.log.applied})`;
    }
    const next = applyToConfState(this.prs.confState(), cc);
    return typeof next === "string" ? next : undefined;
  }
}

function payloadSize(ents: readonly Entry[]): number {
  let s = 0;
  for (const e of ents) s += e.data.byteLength;
  return s;
}
