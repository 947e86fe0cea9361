// node/storage: durable storage for node/raft (WAL + snapshot files).
export { DiskStorage, type DiskStorageOptions, type OpenReport, type SaveRequest } from "./disk-storage.js";
export {
  EncodeError,
  InvalidSaveError,
  SnapshotCorruptError,
  StorageError,
  StorageFailedError,
  WalCorruptError,
  WalInconsistentError,
} from "./errors.js";
export { crc32c } from "./crc32c.js";
export { fsyncDir, writeFully } from "./fsutil.js";
export type { WalStats } from "./wal.js";
export { LmdbVaultStore, type StoreView, type VaultStoreStats } from "./vault-store.js";
export { VaultFiles, type StagedSnapshot } from "./vault-files.js";
export { EvaluationLedger, type EpochSource, type EvaluationEpoch, type EvaluatedAttempt, type LedgerVerdict, epochOf } from "./evaluation-ledger.js";
