// The shared vocabulary of node/raft: log entries, messages, persistent state
// and the Ready batch. Storage and transport depend on these types; nothing
// here does I/O.
//
// Node ids are positive safe integers and permanent: an id is never reused
// after removal (the vault uses it as a Shamir x-coordinate).

export type NodeId = number;

/** No node: used for `vote` and `lead` when unset. */
export const NONE: NodeId = 0;

export enum EntryType {
  /** Application data (may be empty: the leader's no-op on election). */
  Normal = 0,
  /** A membership change: `data` is `encodeConfChange(ConfChange)`. */
  ConfChange = 1,
}

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** Persistent per-node state; must be durable before messages of the same Ready are sent. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

/** Cluster membership. Changes are applied one at a time (no joint consensus). */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export enum ConfChangeType {
  /** Add a non-voting member that receives the log and catches up. */
  AddLearner = 0,
  /** Make an existing learner a voter. */
  PromoteLearner = 1,
  /** Remove a voter or learner. */
  RemoveNode = 2,
}

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
  /** Opaque to raft (the server stores the peer address here). */
  readonly context: Uint8Array;
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

/** A full state-machine snapshot: `data` is opaque to raft. */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

export enum MessageType {
  // Local messages: never sent on the wire.
  Hup = 0,
  Beat = 1,
  Unreachable = 2,
  SnapStatus = 3,
  CheckQuorum = 4,
  // Proposals (forwarded from followers to the leader).
  Prop = 5,
  // Replication.
  App = 6,
  AppResp = 7,
  Heartbeat = 8,
  HeartbeatResp = 9,
  // Elections.
  PreVote = 10,
  PreVoteResp = 11,
  Vote = 12,
  VoteResp = 13,
  // Snapshots: sent in chunks (see SnapshotChunk).
  Snap = 14,
  SnapResp = 15,
  // Leadership transfer.
  TransferLeader = 16,
  TimeoutNow = 17,
  // Linearizable reads.
  ReadIndex = 18,
  ReadIndexResp = 19,
}

/** One chunk of an InstallSnapshot transfer. Chunks are sent in order. */
export interface SnapshotChunk {
  readonly metadata: SnapshotMetadata;
  /** Total length of snapshot data in bytes. */
  readonly totalSize: number;
  /** Byte offset of `data` within the snapshot data. */
  readonly offset: number;
  readonly data: Uint8Array;
  /** True on the last chunk. */
  readonly done: boolean;
}

/**
 * A Raft message. Fields not meaningful for a type are zero/empty.
 * `context` carries ReadIndex request contexts and campaign reasons.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly snapshot: SnapshotChunk | null;
  readonly context: Uint8Array;
}

export enum StateType {
  Follower = 0,
  PreCandidate = 1,
  Candidate = 2,
  Leader = 3,
}

/** Volatile state, reported for observability; not persisted. */
export interface SoftState {
  readonly lead: NodeId;
  readonly state: StateType;
}

/** A completed ReadIndex request: reads at or after `index` are linearizable. */
export interface ReadState {
  readonly index: number;
  readonly context: Uint8Array;
}

/**
 * Work the application must do, in this order, then call `advance()`:
 *  1. persist `hardState` (if set), `entries` and `snapshot` (if set), fsync;
 *  2. send `messages` (only after step 1 is durable);
 *  3. apply `committedEntries` (and `snapshot`) to the state machine, in order.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly readStates: readonly ReadState[];
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly mustSync: boolean;
}

/** Thrown for a contract violation or a broken invariant: the node must stop. */
export class RaftPanic extends Error {
  override name = "RaftPanic";
}

/** Raised when a requested log index was compacted away. */
export class ErrCompacted extends Error {
  override name = "ErrCompacted";
}

/** Raised when a requested index is past the last entry in storage. */
export class ErrUnavailable extends Error {
  override name = "ErrUnavailable";
}

/**
 * Raised by Storage.snapshot() when the latest snapshot cannot be sent now
 * (etcd's ErrSnapshotTemporarilyUnavailable: the application prepares one);
 * the leader skips that follower and tries again at its next chance.
 */
export class ErrSnapshotTemporarilyUnavailable extends Error {
  override name = "ErrSnapshotTemporarilyUnavailable";
}

/** Proposal refused (no leader, transfer in progress, uncommitted cap reached, ...). */
export class ErrProposalDropped extends Error {
  override name = "ErrProposalDropped";
}

/**
 * The read side of the log that raft consults, in the style of etcd's
 * raft.Storage. All methods are synchronous: implementations keep the stable
 * log in memory (MemoryStorage) and node/storage persists it to disk before
 * appending to it.
 *
 * Contract: entries in [firstIndex(), lastIndex()] are stable (durable);
 * term(firstIndex()-1) is the term of the last compacted entry (snapshot).
 */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), total size limited to maxSize bytes (at least one entry). */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /** Term of entry i, for i in [firstIndex()-1, lastIndex()]. */
  term(i: number): number;
  lastIndex(): number;
  firstIndex(): number;
  /** The latest snapshot; raft sends it to followers that fell behind. May throw ErrSnapshotTemporarilyUnavailable. */
  snapshot(): Snapshot;
}

export function emptyHardState(): HardState {
  return { term: 0, vote: NONE, commit: 0 };
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}

const EMPTY = new Uint8Array(0);

/** A message with every optional field zeroed; override what the type needs. */
export function message(fields: Partial<Message> & Pick<Message, "type">): Message {
  return {
    from: NONE, to: NONE, term: 0, logTerm: 0, index: 0, entries: [], commit: 0,
    reject: false, rejectHint: 0, snapshot: null, context: EMPTY,
    ...fields,
  };
}

/** Approximate wire size of an entry, used for byte-based flow control. */
export function entrySize(e: Entry): number {
  return e.data.byteLength + 24;
}
