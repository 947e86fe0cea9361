// The bkv client SDK (docs/client.md).
export * from "./errors.js";
export * from "./descriptor.js";
export * from "./key.js";
export { fetchDescriptor } from "./fetch.js";
export { type RetryPolicy, DEFAULT_RETRY } from "./retry.js";
export type { ClusterStatus, NodeStatus, RecordStatus } from "./status.js";
export type { ClientWarning, WarningCode } from "./warnings.js";
export { AbortError, type AbortableCall } from "./abort.js";
export { type CallOptions, DEFAULT_GUESS_LIMIT, type RegisterOptions, VaultClient, type VaultClientOptions } from "./vault-client.js";
export { DEFAULT_SCRYPT, type ScryptParams } from "../../proto/crypto/index.js";
export { type TokenProvider, bearerInterceptor } from "./auth.js";
