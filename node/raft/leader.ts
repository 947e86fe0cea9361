// The leader side of Raft (etcd raft's stepLeader and the send helpers):
// replication with flow control, commitment, heartbeats, CheckQuorum,
// ReadIndex, leadership transfer and chunked snapshots.

import { ProgressState, type Progress } from "./progress.js";
import { confChangeOf } from "./confchange.js";
import type { Raft } from "./raft.js";
import { SnapshotSender } from "./snapshot-send.js";
import {
  type Entry,
  EntryType,
  ErrCompacted,
  ErrProposalDropped,
  ErrSnapshotTemporarilyUnavailable,
  type Message,
  MessageType,
  NONE,
  type NodeId,
  RaftPanic,
  type Snapshot,
  StateType,
  entrySize,
} from "./types.js";

/**
 * Commits the highest index replicated on a quorum of voters, but only if
 * that entry is from the current term (Raft §5.4.2 / Figure 8): entries of
 * earlier terms are committed indirectly, never by counting their replicas.
 */
export function maybeCommit(r: Raft): boolean {
  return r.log.maybeCommit(r.prs.committed(), r.term);
}

/** Sends MsgApp (or starts a snapshot) to `to` unless its Progress is paused. Returns true if something was sent. */
export function maybeSendAppend(r: Raft, to: NodeId, sendIfEmpty: boolean): boolean {
  const pr = r.prs.progress.get(to);
  if (pr === undefined || pr.isPaused()) return false;
  let prevTerm: number;
  let ents: Entry[];
  try {
    prevTerm = r.log.term(pr.next - 1);
    ents = r.log.entries(pr.next, r.maxMsgSize);
  } catch (e) {
    if (e instanceof ErrCompacted) return startSnapshot(r, to, pr);
    throw e;
  }
  if (ents.length === 0 && !sendIfEmpty) return false;
  r.send({ type: MessageType.App, to, index: pr.next - 1, logTerm: prevTerm, entries: ents, commit: r.log.committed });
  const last = ents[ents.length - 1];
  if (last !== undefined) {
    if (pr.state === ProgressState.Replicate) {
      pr.optimisticUpdate(last.index);
      pr.inflights.add(last.index, ents.reduce((s, e) => s + entrySize(e), 0));
    } else if (pr.state === ProgressState.Probe) {
      pr.probeSent = true;
    }
  }
  return true;
}

function startSnapshot(r: Raft, to: NodeId, pr: Progress): boolean {
  if (!pr.recentActive) {
    r.logger.debug(`${r.id} not sending snapshot to ${to}: not recently active`);
    return false;
  }
  let snap: Snapshot;
  try {
    snap = r.log.snapshot();
  } catch (err) {
    if (!(err instanceof ErrSnapshotTemporarilyUnavailable)) throw err;
    r.logger.debug(`${r.id} not sending snapshot to ${to}: temporarily unavailable`);
    return false;
  }
  if (snap.metadata.index === 0) throw new RaftPanic("need a non-empty snapshot to catch up a follower");
  r.logger.info(`${r.id} sending snapshot ${snap.metadata.index} (${snap.data.byteLength} bytes) to ${to}`);
  pr.becomeSnapshot(snap.metadata.index, new SnapshotSender(snap, r.maxSnapshotChunkBytes));
  sendSnapshotChunks(r, to, pr);
  return true;
}

function sendSnapshotChunks(r: Raft, to: NodeId, pr: Progress): void {
  if (pr.snapSend === null) return;
  for (const chunk of pr.snapSend.nextChunks()) r.send({ type: MessageType.Snap, to, snapshot: chunk });
}

export function bcastAppend(r: Raft): void {
  for (const id of r.prs.memberIds()) if (id !== r.id) maybeSendAppend(r, id, true);
}

function bcastHeartbeat(r: Raft, ctx?: Uint8Array): void {
  const context = ctx ?? r.readOnly.lastPendingContext() ?? new Uint8Array(0);
  for (const id of r.prs.memberIds()) {
    if (id === r.id) continue;
    const pr = r.prs.progress.get(id)!;
    // commit is capped at match: the follower may not have the leader's entries beyond it.
    r.send({ type: MessageType.Heartbeat, to: id, commit: Math.min(pr.match, r.log.committed), context });
    if (ctx === undefined && pr.state === ProgressState.Snapshot && pr.snapSend?.onHeartbeat()) {
      sendSnapshotChunks(r, id, pr); // no chunk acked for a heartbeat interval: resend from the last ack
    }
  }
}

function sendTimeoutNow(r: Raft, to: NodeId): void {
  r.send({ type: MessageType.TimeoutNow, to });
}

export function stepLeader(r: Raft, m: Message): void {
  switch (m.type) {
    case MessageType.Beat: bcastHeartbeat(r); return;
    case MessageType.CheckQuorum: checkQuorum(r); return;
    case MessageType.Prop: handleProposal(r, m); return;
    case MessageType.ReadIndex: handleReadIndex(r, m); return;
    default: break;
  }
  const pr = r.prs.progress.get(m.from);
  if (pr === undefined) return; // not a member (any more)
  switch (m.type) {
    case MessageType.AppResp: handleAppendResponse(r, m, pr); return;
    case MessageType.HeartbeatResp: handleHeartbeatResponse(r, m, pr); return;
    case MessageType.SnapResp: handleSnapshotResponse(r, m, pr); return;
    case MessageType.SnapStatus: handleSnapStatus(r, m, pr); return;
    case MessageType.Unreachable:
      if (pr.state === ProgressState.Replicate) pr.becomeProbe();
      return;
    case MessageType.TransferLeader: handleTransferLeader(r, m, pr); return;
    default: return;
  }
}

function checkQuorum(r: Raft): void {
  if (!r.prs.quorumActive(r.id)) {
    r.logger.warn(`${r.id} stepped down to follower: no quorum of voters active in the last election timeout`);
    r.becomeFollower(r.term, NONE);
  }
  for (const [id, pr] of r.prs.progress) if (id !== r.id) pr.recentActive = false;
}

function handleProposal(r: Raft, m: Message): void {
  if (m.entries.length === 0) throw new RaftPanic(`${r.id} stepped empty MsgProp`);
  if (!r.prs.progress.has(r.id)) throw new ErrProposalDropped(`${r.id} is not in the configuration`);
  if (r.leadTransferee !== NONE) {
    throw new ErrProposalDropped(`${r.id} is transferring leadership to ${r.leadTransferee}`);
  }
  const ents = m.entries.map((e, i) => vetConfChange(r, e, i));
  if (!r.appendEntry(ents)) throw new ErrProposalDropped(`${r.id}: uncommitted entries size limit reached`);
  bcastAppend(r);
}

/** A conf change that is invalid or would overlap a pending one becomes an empty entry (as in etcd). */
function vetConfChange(r: Raft, e: Entry, i: number): Entry {
  if (e.type !== EntryType.ConfChange) return e;
  const cc = confChangeOf(e);
  const refusal = cc === undefined ? "malformed conf change" : r.confChangeRefusal(cc);
  if (refusal !== undefined) {
    r.logger.info(`${r.id} ignoring conf change proposal: ${refusal}`);
    return { term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) };
  }
  r.pendingConfIndex = r.log.lastIndex() + i + 1;
  return e;
}

function handleAppendResponse(r: Raft, m: Message, pr: Progress): void {
  pr.recentActive = true;
  if (m.reject) {
    // Fast backtracking: jump to the leader's last entry whose term <= the follower's hint term.
    let nextProbe = m.rejectHint;
    if (m.logTerm > 0) nextProbe = r.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
    if (pr.maybeDecrTo(m.index, nextProbe)) {
      if (pr.state === ProgressState.Replicate) pr.becomeProbe();
      maybeSendAppend(r, m.from, true);
    }
    return;
  }
  if (m.index > r.log.lastIndex()) {
    r.logger.warn(`${r.id} ignored MsgAppResp from ${m.from}: index ${m.index} is past our last index`);
    return;
  }
  const oldPaused = pr.isPaused();
  if (!pr.maybeUpdate(m.index)) return;
  if (pr.state === ProgressState.Probe) {
    pr.becomeReplicate();
  } else if (pr.state === ProgressState.Snapshot && pr.match >= pr.pendingSnapshot) {
    pr.becomeProbe();
    pr.becomeReplicate();
  } else if (pr.state === ProgressState.Replicate) {
    pr.inflights.freeLE(m.index);
  }
  if (maybeCommit(r)) {
    releasePendingReadIndexMessages(r);
    bcastAppend(r);
  } else if (oldPaused) {
    maybeSendAppend(r, m.from, true);
  }
  while (maybeSendAppend(r, m.from, false)) { /* pipeline until paused or caught up */ }
  if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) {
    r.logger.info(`${r.id} sent TimeoutNow to ${m.from}: log is up to date`);
    sendTimeoutNow(r, m.from);
  }
}

function handleHeartbeatResponse(r: Raft, m: Message, pr: Progress): void {
  pr.recentActive = true;
  pr.probeSent = false;
  if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
  if (pr.match < r.log.lastIndex()) maybeSendAppend(r, m.from, true);
  if (m.context.byteLength === 0) return;
  const acks = r.readOnly.recvAck(m.from, m.context);
  if (acks === undefined) return;
  let voters = 0;
  for (const id of acks) if (r.prs.isVoter(id)) voters++;
  if (voters < r.prs.quorum()) return;
  for (const rs of r.readOnly.advance(m.context)) respondToReadIndex(r, rs.req, rs.index);
}

function handleSnapshotResponse(r: Raft, m: Message, pr: Progress): void {
  pr.recentActive = true;
  if (pr.state !== ProgressState.Snapshot || pr.snapSend === null || m.rejectHint !== pr.pendingSnapshot) return;
  if (m.reject) pr.snapSend.onReject(m.index);
  else pr.snapSend.onAck(m.index);
  sendSnapshotChunks(r, m.from, pr);
}

/** reportSnapshot: the application's transport reports the outcome of a snapshot send. */
function handleSnapStatus(r: Raft, m: Message, pr: Progress): void {
  if (pr.state !== ProgressState.Snapshot) return;
  if (m.reject) pr.pendingSnapshot = 0; // failed: the next probe starts a new transfer
  pr.becomeProbe();
  // Wait for a heartbeat response (or the final MsgAppResp) before probing again.
  pr.probeSent = true;
}

function handleTransferLeader(r: Raft, m: Message, pr: Progress): void {
  if (pr.isLearner) {
    r.logger.debug(`${r.id} ignored transfer to learner ${m.from}`);
    return;
  }
  const transferee = m.from;
  if (r.leadTransferee !== NONE) {
    if (r.leadTransferee === transferee) return;
    r.abortLeaderTransfer();
  }
  if (transferee === r.id) return;
  // The transfer must finish within an election timeout or it is aborted (tickHeartbeat).
  r.electionElapsed = 0;
  r.leadTransferee = transferee;
  if (pr.match === r.log.lastIndex()) sendTimeoutNow(r, transferee);
  else maybeSendAppend(r, transferee, true);
}

// ---- ReadIndex ----

function committedEntryInCurrentTerm(r: Raft): boolean {
  return r.log.zeroTermOnOutOfBounds(r.log.committed) === r.term;
}

function handleReadIndex(r: Raft, m: Message): void {
  if (r.prs.voters.size === 1 && r.prs.isVoter(r.id)) {
    respondToReadIndex(r, m, r.log.committed);
    return;
  }
  // Until an entry of this term commits, the leader's commit index may be
  // behind the previous leader's: postpone the request.
  if (!committedEntryInCurrentTerm(r)) {
    r.pendingReadIndexMessages.push(m);
    return;
  }
  confirmLeadershipForRead(r, m);
}

function confirmLeadershipForRead(r: Raft, m: Message): void {
  r.readOnly.addRequest(r.log.committed, m);
  r.readOnly.recvAck(r.id, m.context);
  r.readHeartbeatDue = true;
}

/**
 * Sends the heartbeat round owed to the ReadIndex requests stepped since the
 * last Ready (RawNode.ready calls it before it takes the messages): one
 * round for all of them, carrying the newest request's context, since a
 * quorum's ack of that context releases every request queued before it
 * (ReadOnly.advance).
 */
export function flushReadHeartbeat(r: Raft): void {
  if (!r.readHeartbeatDue) return;
  r.readHeartbeatDue = false;
  // Only a leader queues read requests, and every role change clears the flag (Raft.reset).
  if (r.state !== StateType.Leader) throw new RaftPanic(`${r.id} owes a read heartbeat round as ${StateType[r.state]}`);
  const newest = r.readOnly.lastPendingContext();
  if (newest !== undefined) bcastHeartbeat(r, newest);
}

/** Serves ReadIndex requests that waited for an entry of this term to commit. */
export function releasePendingReadIndexMessages(r: Raft): void {
  if (r.pendingReadIndexMessages.length === 0 || !committedEntryInCurrentTerm(r)) return;
  const msgs = r.pendingReadIndexMessages;
  r.pendingReadIndexMessages = [];
  for (const m of msgs) confirmLeadershipForRead(r, m);
}

function respondToReadIndex(r: Raft, req: Message, index: number): void {
  if (req.from === NONE || req.from === r.id) {
    r.readStates.push({ index, context: req.context });
    return;
  }
  r.send({ type: MessageType.ReadIndexResp, to: req.from, index, context: req.context });
}
