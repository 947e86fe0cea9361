// Configuration of a Raft node (see /docs/raft.md for the meaning of each field).

import { type NodeId, RaftPanic, type Storage } from "./types.js";

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
}

export const NOOP_LOGGER: Logger = { debug() {}, info() {}, warn() {} };

export interface Config {
  id: NodeId;
  /** Read-only view of the stable log (MemoryStorage or node/storage's DiskStorage). */
  storage: Storage;
  /** Followers campaign after a randomized timeout in [electionTick, 2*electionTick) ticks. */
  electionTick: number;
  /** A leader sends heartbeats every heartbeatTick ticks. */
  heartbeatTick: number;
  /** Last applied index on restart (default 0: re-apply everything after the snapshot). */
  applied?: number;
  /** Bytes of entries per MsgApp (default 1 MiB; at least one entry is always sent). */
  maxSizePerMsg?: number;
  /**
   * Bytes of committed entries handed to the application per Ready (default
   * maxSizePerMsg; at least one entry): bounds the host's synchronous apply.
   */
  maxCommittedSizePerReady?: number;
  /** Pipelined MsgApp per follower (default 256). */
  maxInflightMsgs?: number;
  /** In-flight bytes per follower (default 0 = unlimited). */
  maxInflightBytes?: number;
  /** Cap on the leader's uncommitted proposal bytes (default 0 = unlimited). */
  maxUncommittedEntriesSize?: number;
  /** InstallSnapshot chunk size (default 512 KiB). */
  maxSnapshotChunkBytes?: number;
  /** Leader steps down without a quorum of recent contact; enables the leader lease (default true). */
  checkQuorum?: boolean;
  /** Pre-election before incrementing the term (default true). */
  preVote?: boolean;
  /** Injected randomness: an integer in [0, maxExclusive). */
  randomInt: (maxExclusive: number) => number;
  logger?: Logger;
}

export function validateConfig(c: Config): void {
  const positiveInt = (v: number | undefined) => v === undefined || (Number.isSafeInteger(v) && v > 0);
  if (!Number.isSafeInteger(c.id) || c.id <= 0) throw new RaftPanic(`config: invalid id ${c.id}`);
  if (!positiveInt(c.heartbeatTick)) throw new RaftPanic("config: heartbeatTick must be a positive integer");
  if (!positiveInt(c.electionTick) || c.electionTick <= c.heartbeatTick) {
    throw new RaftPanic("config: electionTick must be an integer greater than heartbeatTick");
  }
  if (!positiveInt(c.maxSizePerMsg) || !positiveInt(c.maxCommittedSizePerReady) || !positiveInt(c.maxInflightMsgs) || !positiveInt(c.maxSnapshotChunkBytes)) {
    throw new RaftPanic("config: maxSizePerMsg, maxCommittedSizePerReady, maxInflightMsgs and maxSnapshotChunkBytes must be positive integers");
  }
  if ((c.maxInflightBytes ?? 0) < 0 || (c.maxUncommittedEntriesSize ?? 0) < 0 || (c.applied ?? 0) < 0) {
    throw new RaftPanic("config: maxInflightBytes, maxUncommittedEntriesSize and applied must not be negative");
  }
  if (typeof c.randomInt !== "function") throw new RaftPanic("config: randomInt is required");
}
