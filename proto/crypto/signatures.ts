// Sign and verify the protocol's signed messages (messages.ts) with the
// reset key (clients) and check node identity signatures (clients).
import {
  type EvaluationFields,
  type NodeDescriptorFields,
  confirmMessage,
  deleteMessage,
  evaluationSigningMessage,
  nodeDescriptorMessage,
  overwriteMessage,
} from "./messages.js";
import { signMessage, verifyMessage } from "./ecdsa.js";

export interface RecordRef {
  clusterId: string;
  user: string;
  /** The record's current version (the one confirmed, deleted or overwritten). */
  version: number;
}

export function signConfirm(resetPrivateKey: bigint, ref: RecordRef, attemptId: bigint | number): Uint8Array {
  return signMessage(resetPrivateKey, confirmMessage(ref.clusterId, ref.user, ref.version, attemptId));
}

export function verifyConfirm(resetPublicKey: Uint8Array, ref: RecordRef, attemptId: bigint | number, signature: Uint8Array): boolean {
  return verifyMessage(resetPublicKey, confirmMessage(ref.clusterId, ref.user, ref.version, attemptId), signature, { allowHighS: false });
}

export function signDelete(resetPrivateKey: bigint, ref: RecordRef): Uint8Array {
  return signMessage(resetPrivateKey, deleteMessage(ref.clusterId, ref.user, ref.version));
}

export function verifyDelete(resetPublicKey: Uint8Array, ref: RecordRef, signature: Uint8Array): boolean {
  return verifyMessage(resetPublicKey, deleteMessage(ref.clusterId, ref.user, ref.version), signature, { allowHighS: false });
}

export function signOverwrite(resetPrivateKey: bigint, ref: RecordRef, newRecordDigest: Uint8Array): Uint8Array {
  return signMessage(resetPrivateKey, overwriteMessage(ref.clusterId, ref.user, ref.version, newRecordDigest));
}

export function verifyOverwrite(resetPublicKey: Uint8Array, ref: RecordRef, newRecordDigest: Uint8Array, signature: Uint8Array): boolean {
  const message = overwriteMessage(ref.clusterId, ref.user, ref.version, newRecordDigest);
  return verifyMessage(resetPublicKey, message, signature, { allowHighS: false });
}

/** Checks a node's identity signature over its evaluation (high-S accepted: tokens do not normalize). */
export function verifyEvaluationSignature(identityPublicKey: Uint8Array, fields: EvaluationFields, signature: Uint8Array): boolean {
  return verifyMessage(identityPublicKey, evaluationSigningMessage(fields), signature, { allowHighS: true });
}

/** Checks a node's identity signature over its own descriptor entry (high-S accepted, as above). */
export function verifyNodeDescriptorSignature(fields: NodeDescriptorFields, signature: Uint8Array): boolean {
  return verifyMessage(fields.identityPublicKey, nodeDescriptorMessage(fields), signature, { allowHighS: true });
}
