// node/hsm: the vault node's PKCS#11 token (see docs/hsm.md).
import type { EvaluationAbout, SignedEvaluation } from "./hsm.js";

export { Hsm, type CallStrategy, type EvaluationAbout, type HsmOptions, type HsmStats, type SignedEvaluation } from "./hsm.js";
export {
  CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD_SOFTHSM, DEFAULT_MODULE_PATH, type HsmConfig,
} from "./config.js";
export { HsmError, type HsmErrorCode } from "./errors.js";
export { DEFAULT_POOL, HsmWorkerPool, type PoolOptions, type WorkerMemory, restartInterval } from "./worker-pool.js";
export { moduleWorker } from "./module-worker.js";

/** What the vault needs from a node's HSM; both Hsm and HsmWorkerPool provide it. */
export interface NodeHsm {
  readonly agreementPublicKey: Uint8Array;
  readonly identityPublicKey: Uint8Array;
  evaluate(wrappedShare: Uint8Array, blinded: Uint8Array, commitment: Uint8Array): Promise<Uint8Array>;
  /** evaluate() and the identity key's signature over its answer, in one call (what the Evaluate handler uses). */
  evaluateSigned(wrappedShare: Uint8Array, blinded: Uint8Array, commitment: Uint8Array, about: EvaluationAbout): Promise<SignedEvaluation>;
  sign(message: Uint8Array): Promise<Uint8Array>;
  close(): void | Promise<void>;
}
