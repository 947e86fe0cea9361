// The Ready loop's outward types: its options and transport link, what it
// reports for each applied entry, and the error of a proposal that could not
// be made or did not complete.
import type { ConfChange, Message, NodeId } from "../raft/index.js";
import type { DiskStorage, LmdbVaultStore, VaultFiles } from "../storage/index.js";
import type { ApplyOutcome, VaultResult, VaultStateMachine } from "../vault/index.js";
import type { Logger } from "./log.js";
import type { Candidate } from "./snapshot-attest.js";
import type { AbortReason, DownloadLimits } from "./snapshot-download.js";

/** What onOutcome sees: a vault command and its result, a membership change, or a snapshot installed. */
export type AppliedEvent =
  | {
    readonly kind: "command"; readonly index: number; readonly data: Uint8Array; readonly result: VaultResult;
    /** The request id and command apply parsed from `data` (absent: the observer parses `data` itself). */
    readonly parsed?: Pick<ApplyOutcome, "requestId" | "command">;
  }
  | {
    readonly kind: "membership"; readonly index: number;
    /** null: the entry's data does not decode. */
    readonly change: ConfChange | null;
    /**
     * Why the entry changed nothing (absent: it took effect): Raft's refusal
     * against the configuration (e.g. "node 4 is already a member"), or
     * "undecodable". Follows from the log alone, so every node says the same.
     */
    readonly ignored?: string;
  }
  | { readonly kind: "snapshot"; readonly index: number };

/** A proposal that could not be made or did not complete: the caller may retry with the same request id. */
export class ProposalError extends Error {
  override readonly name = "ProposalError";
  constructor(readonly reason: "NO_LEADER" | "DROPPED" | "TIMEOUT" | "LEADER_CHANGED" | "STOPPED", message: string) {
    super(message);
  }
}

/**
 * A membership change committed at `index` that Raft ignored against the
 * configuration of that index (`reason`, e.g. "node 4 is already a member"):
 * it changed nothing. The waiter of a change keyed like it gets this instead
 * of the index; the admin port then tells the caller whether what it asked
 * holds anyway.
 */
export class ConfChangeIgnoredError extends Error {
  override readonly name = "ConfChangeIgnoredError";
  constructor(readonly index: number, readonly reason: string) {
    super(`the membership change committed at index ${index} was ignored: ${reason}`);
  }
}

export function proposalDropped(): ProposalError {
  return new ProposalError("DROPPED", "the proposal was dropped (leadership transfer, pending membership change or overload); retry");
}

export interface PeerLink {
  send(messages: readonly Message[]): void;
  addPeer(id: NodeId, address: string): void;
  removePeer(id: NodeId): void;
  /** Downloads the store state of snapshot (index, term) from node `id`. */
  fetchSnapshot(id: NodeId, index: number, term: number, signal: AbortSignal): AsyncIterable<Uint8Array>;
}

export interface RaftLoopOptions {
  readonly id: NodeId;
  readonly clusterId: string;
  readonly storage: DiskStorage;
  /** The vault store's directory; `sm` lives in its current store (openVault). */
  readonly files: VaultFiles;
  readonly sm: VaultStateMachine;
  readonly tickMs: number;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly snapshotInterval: number;
  /** Local snapshots whose store views stay pinned for followers to download. */
  readonly snapshotRetention: number;
  readonly proposalTimeoutMs: number;
  /** The time a leader stamps on the vault entries it appends (unix ms): the cluster's (cluster-clock.ts); null until first read (proposals are dropped meanwhile). Default: this node's clock. */
  readonly clusterNow?: () => number | null;
  /**
   * The largest entry a member may forward to this node as leader, and the
   * bytes a second each member may forward (forward-gate.ts, whose defaults
   * apply when absent): a proposal over either is dropped before Raft
   * appends it. A client request is bounded at the member's port; these
   * bound a rogue member's.
   */
  readonly maxForwardedEntryBytes?: number;
  readonly forwardedBytesPerSecond?: number;
  /** The bounds of a snapshot download from another member (snapshot-download.ts; default DEFAULT_DOWNLOAD_LIMITS). */
  readonly snapshotDownload?: DownloadLimits;
  /** A snapshot download ended before its last chunk, and why (metrics). */
  onDownloadAbandoned?(reason: AbortReason): void;
  readonly log: Logger;
  /** Called when the loop cannot go on (storage failure, broken invariant). */
  onFatal(err: unknown): void;
  /** Resolves when a snapshot's staged state may be installed, throws to refuse it (snapshot-attest.ts attestSnapshot). */
  attest(c: Candidate): Promise<void>;
  /** Observer of each applied batch (metrics). */
  onApplied?(entries: number, ms: number): void;
  /**
   * Called as each store commit is sealed, with the store: it may put
   * node-local pairs (node/vault/keys.ts LOCAL_PREFIX) into the sealed batch,
   * and the commit is written once its promise resolved (the audit log's
   * fsync: never behind the store; the audit chain's head, audit-head.ts).
   */
  beforeStoreCommit?(store: LmdbVaultStore): Promise<void>;
  /** Observer of each applied entry's outcome and each installed snapshot, in apply order (the audit log). */
  onOutcome?(event: AppliedEvent): void;
}
