// Progress: the leader's view of one follower (etcd raft's tracker.Progress).
//
// States:
//  - Probe: the leader does not know the follower's last matching index; it
//    sends at most one MsgApp per heartbeat interval and waits for the answer.
//  - Replicate: the follower is known to match up to `match`; the leader
//    pipelines MsgApp optimistically, bounded by `inflights`.
//  - Snapshot: the follower needs a compacted entry; the leader streams a
//    snapshot in chunks and sends no MsgApp until it is installed.
//
// Invariant: match < next.

import { Inflights } from "./inflights.js";
import type { SnapshotSender } from "./snapshot-send.js";

export enum ProgressState {
  Probe = 0,
  Replicate = 1,
  Snapshot = 2,
}

export class Progress {
  match = 0;
  next: number;
  state = ProgressState.Probe;
  /** In Probe: a MsgApp was sent and no answer arrived yet. */
  probeSent = false;
  /** In Snapshot: index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** The chunked transfer in progress (Snapshot state only). */
  snapSend: SnapshotSender | null = null;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(next: number, maxInflightMsgs: number, maxInflightBytes: number, public isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapSend = null;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number, sender: SnapshotSender): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
    this.snapSend = sender;
  }

  /** An acknowledgement of index n arrived; returns true if it was news. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** Optimistically advances next after pipelining entries up to n (Replicate only). */
  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /**
   * A rejection of the MsgApp at index `rejected` arrived, with the follower's
   * hint `matchHint`. Returns false if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** True if the leader must not send MsgApp to this follower now. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe: return this.probeSent;
      case ProgressState.Replicate: return this.inflights.full();
      case ProgressState.Snapshot: return true;
    }
  }
}
