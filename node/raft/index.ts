// Public API of node/raft: a pure, deterministic Raft library (see docs/raft.md).

export * from "./types.js";
export { MemoryStorage, limitSize } from "./memory-storage.js";
export type { Config, Logger } from "./config.js";
export { RawNode, ErrInvalidMessage } from "./rawnode.js";
export type { Status, ProgressStatus } from "./rawnode.js";
export { ProgressState } from "./progress.js";
export { encodeConfChange, decodeConfChange, confChangeOf, applyToConfState, ErrInvalidConfChange } from "./confchange.js";
export { bootstrapSnapshot } from "./bootstrap.js";
export {
  ReadyDriver, planReady, writesOnlyCommit, durableState,
  type ReadySource, type ReadyHost, type ReadyPlan, type DurableState,
} from "./ready-driver.js";
