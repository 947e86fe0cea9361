// ProgressTracker: the membership (voters and learners), the leader's
// Progress for each member, and the votes of the current election.
// Learners replicate the log but never vote and never count for a quorum.

import { Progress } from "./progress.js";
import { type ConfState, type NodeId, RaftPanic } from "./types.js";

export enum VoteResult {
  Pending = 0,
  Won = 1,
  Lost = 2,
}

export class ProgressTracker {
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();

  constructor(readonly maxInflightMsgs: number, readonly maxInflightBytes: number) {}

  /**
   * Switches to `cs`, keeping the Progress of members that stay and creating
   * Progress (next = nextIndex) for new ones.
   */
  applyConfState(cs: ConfState, nextIndex: number): void {
    const voters = new Set(cs.voters);
    const learners = new Set(cs.learners);
    for (const id of voters) {
      if (learners.has(id)) throw new RaftPanic(`conf state: ${id} is both voter and learner`);
    }
    for (const id of [...this.progress.keys()]) {
      if (!voters.has(id) && !learners.has(id)) this.progress.delete(id);
    }
    for (const id of [...voters, ...learners]) {
      const pr = this.progress.get(id);
      if (pr === undefined) {
        this.progress.set(id, new Progress(nextIndex, this.maxInflightMsgs, this.maxInflightBytes, learners.has(id)));
      } else {
        pr.isLearner = learners.has(id);
      }
    }
    this.voters = voters;
    this.learners = learners;
  }

  /** Fresh Progress for every member (on a role change): next = lastIndex+1; self matches lastIndex. */
  resetProgress(lastIndex: number, self: NodeId): void {
    for (const [id, pr] of this.progress) {
      const fresh = new Progress(lastIndex + 1, this.maxInflightMsgs, this.maxInflightBytes, pr.isLearner);
      if (id === self) fresh.match = lastIndex;
      this.progress.set(id, fresh);
    }
  }

  confState(): ConfState {
    return { voters: sorted(this.voters), learners: sorted(this.learners) };
  }

  isVoter(id: NodeId): boolean {
    return this.voters.has(id);
  }

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  /** The largest index acknowledged (match) by a majority of voters; 0 with no voters. */
  committed(): number {
    if (this.voters.size === 0) return 0;
    const matches = [...this.voters].map((id) => this.progress.get(id)?.match ?? 0);
    matches.sort((a, b) => b - a);
    return matches[this.quorum() - 1]!;
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Records a vote from `id` (first vote counts); learners' and strangers' votes are ignored. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.voters.has(id) || this.votes.has(id)) return;
    this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, v] of this.votes) {
      if (!this.voters.has(id)) continue;
      if (v) granted++;
      else rejected++;
    }
    const q = this.quorum();
    let result = VoteResult.Pending;
    if (granted >= q) result = VoteResult.Won;
    else if (this.voters.size - rejected < q) result = VoteResult.Lost;
    return { granted, rejected, result };
  }

  /** True if a quorum of voters was recently active (self always counts as active). */
  quorumActive(self: NodeId): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (id === self || this.progress.get(id)?.recentActive) active++;
    }
    return active >= this.quorum();
  }

  /** Ids of all members (voters then learners), in ascending order within each group. */
  memberIds(): NodeId[] {
    return [...sorted(this.voters), ...sorted(this.learners)];
  }
}

function sorted(s: Set<NodeId>): NodeId[] {
  return [...s].sort((a, b) => a - b);
}
