// The slice of the node/raft public API (see /work/raft-api.md) that the
// simulation drives. The harness receives it as a value so that a copy of
// the library (e.g. one with a deliberately injected bug, see
// docs/simulation.md) can be loaded instead of node/raft.

import type { Config } from "../../node/raft/config.js";
import type { ReadyHost, ReadySource } from "../../node/raft/ready-driver.js";
import type {
  ConfChange, ConfState, Entry, HardState, Message, NodeId, Ready, Snapshot, SoftState, Storage,
} from "../../node/raft/types.js";

/** The write side of MemoryStorage that the simulated disk uses. */
export interface SimStorage extends Storage {
  setHardState(hs: HardState): void;
  applySnapshot(snap: Snapshot): boolean;
  createSnapshot(i: number, confState: ConfState, data: Uint8Array): Snapshot;
  compact(compactIndex: number): void;
  append(entries: readonly Entry[]): void;
}

/** The library's own Config, without its logger (the harness traces instead). */
export type SimRaftConfig = Omit<Config, "logger">;

export interface SimStatus {
  readonly id: NodeId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: number;
  /** Appends refused because they would have replaced committed entries (hardening; must stay 0). */
  readonly refusedTruncations?: number;
}

export interface SimRawNode {
  tick(): void;
  campaign(): void;
  propose(data: Uint8Array): void;
  proposeConfChange(cc: ConfChange): void;
  applyConfChange(cc: ConfChange): ConfState;
  step(m: Message): void;
  readIndex(context: Uint8Array): void;
  transferLeadership(to: NodeId): void;
  reportUnreachable(id: NodeId): void;
  reportSnapshot(id: NodeId, ok: boolean): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(rd: Ready): void;
  status(): SimStatus;
}

/** The library's Ready loop (node/raft/ready-driver.ts). */
export interface SimReadyDriver {
  next(): boolean;
  writeDone(): void;
}

export interface RaftLib {
  RawNode: new (config: SimRaftConfig) => SimRawNode;
  /** The library's own Ready driver: a copy of the library brings its own planReady. */
  ReadyDriver: new (raw: ReadySource, storage: Storage, host: ReadyHost) => SimReadyDriver;
  /** The library's own MemoryStorage (its error classes are the ones the library's raft recognizes). */
  MemoryStorage: new () => SimStorage;
  encodeConfChange(cc: ConfChange): Uint8Array;
  decodeConfChange(b: Uint8Array): ConfChange;
}

/** Loads the library from a module path (default: this repository's node/raft). */
export async function loadRaftLib(modulePath?: string): Promise<RaftLib> {
  const spec = modulePath ?? new URL("../../node/raft/index.js", import.meta.url).href;
  const mod = (await import(spec)) as Partial<RaftLib>;
  if (typeof mod.RawNode !== "function" || typeof mod.ReadyDriver !== "function" || typeof mod.MemoryStorage !== "function"
    || typeof mod.encodeConfChange !== "function" || typeof mod.decodeConfChange !== "function") {
    throw new Error(`${spec} does not export RawNode, ReadyDriver, MemoryStorage, encodeConfChange and decodeConfChange`);
  }
  return mod as RaftLib;
}
