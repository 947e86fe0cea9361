// What the services, health and metrics may see of a RaftLoop: read-only
// state (RaftView), plus the few calls each service makes (VaultLoop,
// AdminLoop). The RawNode and the mutable vault stay inside RaftLoop.
import type { ConfChange, NodeId, Snapshot, StateType } from "../raft/index.js";
import type { VaultResult, VaultStateMachine } from "../vault/index.js";

/** The applied vault state, read-only (VaultStateMachine without apply/skip), and its verified-token cache for the client port to share. */
export type VaultReader = Pick<VaultStateMachine,
  "appliedIndex" | "getRecord" | "pendingAttempt" | "whyNotPending" | "nodes" | "digest" | "digestAt" | "stats" | "snapshot" | "clusterCa" | "issuers" | "verifiedTokens" | "leaderTime" | "boundSharesOnly">;

export interface RaftView {
  /** The leader this node knows; NONE while it knows none. */
  readonly leaderId: NodeId;
  readonly isLeader: boolean;
  readonly role: StateType;
  readonly term: number;
  readonly commitIndex: number;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Index of the last snapshot this node took or restored. */
  readonly lastSnapshotIndex: number;
  /** Peer (raft) addresses of every member, this node included. */
  readonly peers: ReadonlyMap<NodeId, string>;
  /** A member's match index as this node's leader progress knows it; 0 on a follower. */
  matchIndex(id: NodeId): number;
  /** The applied vault state. */
  readonly vault: VaultReader;
}

/** The client service's view: reads, proposals and read points. */
export interface VaultLoop extends RaftView {
  propose(requestId: Uint8Array, data: Uint8Array): Promise<VaultResult>;
  readBarrier(timeoutMs: number): Promise<void>;
  /** The leader's commit index as of now (one ReadIndex round); ProposalError when no leader confirms one in time. */
  readIndex(timeoutMs: number): Promise<number>;
  waitApplied(index: number, timeoutMs: number): Promise<boolean>;
  /** Sends the followers the commit index the commit hold keeps back, now (RaftLoop.sendHeldCommits). */
  sendHeldCommits(): void;
}

/** The admin service's view: membership, leadership and snapshots. */
export interface AdminLoop extends RaftView {
  /** A vault command (the issuer key set, bind-shares); resolves with its outcome once applied here. */
  propose(requestId: Uint8Array, data: Uint8Array): Promise<VaultResult>;
  /** Resolves with the change's index once applied here; ConfChangeIgnoredError when Raft ignored it. */
  proposeConfChange(cc: ConfChange): Promise<number>;
  transferLeadership(to: NodeId, timeoutMs: number): Promise<NodeId>;
  requestSnapshot(): Promise<Snapshot>;
  /** The bytes of this node's latest snapshot, in order, in chunks (admin SaveSnapshot). */
  snapshotStream(): AsyncIterable<Uint8Array>;
}
