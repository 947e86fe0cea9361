// node/vault: the replicated state machine of DESIGN §5 (docs/vault.md).
// Pure and deterministic; imports proto/crypto only.
export {
  type Command,
  type CommandKind,
  type Envelope,
  type NodeAnnouncement,
  type NodeCertification,
  COMMAND_FORMAT_VERSION,
  COMMAND_MAGIC,
  MAX_ADDRESS_BYTES,
  REQUEST_ID_LENGTH,
  STAMP_MAGIC,
  decodeCommand,
  stampTime,
  unstamp,
  encodeCommand,
  parseEnvelope,
  payloadKind,
  validateAnnouncement,
  validateCommand,
} from "./commands.js";
export {
  type RefusalReason,
  type VaultCode,
  type VaultError,
  type VaultReason,
  type VaultResult,
  GRPC_STATUS,
  REASON_CODE,
  REFUSAL_REASONS,
  VAULT_REASONS,
  decodeResult,
  encodeResult,
  vaultError,
} from "./result.js";
export { type ApplyOutcome, type RecordView, type VaultOptions, VaultStateMachine } from "./state-machine.js";
export { DEFAULT_REQUEST_ID_CAPACITY, requestFingerprint } from "./dedupe.js";
export { DEFAULT_DIGEST_WINDOW, DigestRing } from "./digest-ring.js";
export { SNAPSHOT_CHUNK_BYTES, SNAPSHOT_FORMAT_VERSION, SNAPSHOT_MAGIC, InlinePairHasher, type PairHasher, SnapshotImporter, snapshotChunks } from "./snapshot-stream.js";
export { MemoryStore, type VaultStore, firstPair } from "./store.js";
export { ROLLBACK_RECORDS_PER_STEP, recordRollback, rollbackFrom } from "./rollback.js";
export { SHARED_SHARES_RECORDS_PER_STEP, SHARED_SHARE_USERS_LISTED, type ReadableStore, type SharedShare, type SharedSharesReport, findSharedShares } from "./shared-shares.js";
export { ALL_KEYS, LOCAL_PREFIX, type LocalName, localKey } from "./keys.js";
export { DEFAULT_THROTTLE, NO_THROTTLE, type ThrottleSchedule, notBefore, validateSchedule } from "./throttle.js";
export { announcementRefusal, verifyAnnouncement } from "./nodes.js";
export { CorruptSnapshotError, VaultInvariantError } from "./errors.js";
export { LTHASH_BYTES, LtHash } from "./digest.js";
export { type Issuer, type IssuerKey, type IssuerPolicy, type TokenAlgorithm, decodeIssuerPolicy, encodeIssuerPolicy, keysFromJwks, validateIssuerPolicy } from "./issuers.js";
export { MAX_TOKEN_BYTES, type TokenCheck, type TokenContext, type TokenVerdict, tokenRefusal, verifyToken } from "./jwt.js";
export { TOKEN_CACHE_CAPACITY, VerifiedTokens } from "./token-cache.js";
