// Errors of node/vault. Bad input is never an exception out of apply (it is a
// VaultResult); these are for corrupt snapshots and for broken contracts of
// the caller (an out-of-order index), which must stop the node loudly.
import { InvalidEncodingError } from "../../proto/crypto/index.js";

/** A snapshot that is truncated, altered, or violates a state invariant. */
export class CorruptSnapshotError extends InvalidEncodingError {
  constructor(reason: string) {
    super(`vault snapshot refused: ${reason}`);
  }
}

/** The caller broke the state machine's contract (e.g. applied an index twice). */
export class VaultInvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VaultInvariantError";
  }
}
