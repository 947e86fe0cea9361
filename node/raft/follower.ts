// The follower side of Raft (etcd raft's stepFollower and handlers):
// accepting entries from the leader, refusing any append that would replace
// committed entries, heartbeats, and receiving chunked snapshots.

import { CampaignType } from "./campaign.js";
import type { Raft } from "./raft.js";
import { ErrProposalDropped, type Message, MessageType, NONE, type NodeId } from "./types.js";

export function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case MessageType.Prop:
      if (r.lead === NONE) throw new ErrProposalDropped(`${r.id} has no leader at term ${r.term}`);
      r.send({ ...m, to: r.lead, term: 0 });
      return;
    case MessageType.App:
      heardFromLeader(r, m.from);
      handleAppendEntries(r, m);
      return;
    case MessageType.Heartbeat:
      heardFromLeader(r, m.from);
      handleHeartbeat(r, m);
      return;
    case MessageType.Snap:
      heardFromLeader(r, m.from);
      handleSnapshot(r, m);
      return;
    case MessageType.TransferLeader:
    case MessageType.ReadIndex:
      if (r.lead === NONE) {
        r.logger.info(`${r.id} has no leader: dropping ${MessageType[m.type]}`);
        return;
      }
      r.send({ ...m, to: r.lead, term: 0 }); // forwarded as is (send sets the term where it belongs)
      return;
    case MessageType.TimeoutNow:
      r.logger.info(`${r.id} received TimeoutNow from ${m.from}: campaigning to take over leadership`);
      r.hup(CampaignType.Transfer);
      return;
    case MessageType.ReadIndexResp:
      r.readStates.push({ index: m.index, context: m.context });
      return;
    default:
      return;
  }
}

function heardFromLeader(r: Raft, from: NodeId): void {
  r.electionElapsed = 0;
  r.lead = from;
}

function handleAppendEntries(r: Raft, m: Message): void {
  if (m.index < r.log.committed) {
    if (conflictsWithCommitted(r, m)) {
      refuseTruncation(r, m);
      return;
    }
    r.send({ type: MessageType.AppResp, to: m.from, index: r.log.committed });
    return;
  }
  const res = r.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (res === "refused") {
    refuseTruncation(r, m);
  } else if (res !== undefined) {
    r.send({ type: MessageType.AppResp, to: m.from, index: res });
  } else {
    // Reject with a hint for fast backtracking: the largest index <= m.index
    // whose term is <= m.logTerm (the leader can skip a whole term at once).
    const hint = r.log.findConflictByTerm(Math.min(m.index, r.log.lastIndex()), m.logTerm);
    r.send({
      type: MessageType.AppResp, to: m.from, index: m.index, reject: true,
      rejectHint: hint.index, logTerm: hint.term,
    });
  }
}

/** True if m disagrees with an entry at or below our commit index (only a faulty leader sends that). */
function conflictsWithCommitted(r: Raft, m: Message): boolean {
  const known = (i: number) => i >= r.log.firstIndex() - 1 && i <= r.log.committed;
  if (known(m.index) && !r.log.matchTerm(m.index, m.logTerm)) return true;
  return m.entries.some((e) => known(e.index) && !r.log.matchTerm(e.index, e.term));
}

function refuseTruncation(r: Raft, m: Message): void {
  r.refusedTruncations++;
  r.logger.warn(
    `${r.id} REFUSED append from ${m.from} at term ${m.term} (index ${m.index}, ${m.entries.length} entries): ` +
    `it would replace entries at or below commit index ${r.log.committed}`,
  );
}

function handleHeartbeat(r: Raft, m: Message): void {
  r.log.commitTo(Math.min(m.commit, r.log.lastIndex()));
  r.send({ type: MessageType.HeartbeatResp, to: m.from, context: m.context });
}

function handleSnapshot(r: Raft, m: Message): void {
  const c = m.snapshot;
  if (c === null) return;
  const sidx = c.metadata.index;
  if (sidx <= r.log.committed) {
    r.snapRecv.reset();
    r.send({ type: MessageType.AppResp, to: m.from, index: r.log.committed });
    return;
  }
  const out = r.snapRecv.receive(m.from, m.term, c);
  if (out.kind === "complete") {
    const restored = r.restore(out.snapshot);
    r.send({ type: MessageType.AppResp, to: m.from, index: restored ? r.log.lastIndex() : r.log.committed });
    return;
  }
  r.send({
    type: MessageType.SnapResp, to: m.from, index: out.received, rejectHint: sidx, reject: out.kind === "reject",
  });
}

