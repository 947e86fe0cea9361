// Domain-separated messages that bkv signs, and their field validation.
// Every message is: lp16(tag) || fields, in the canonical encoding of
// bytes.ts (strings lp16 UTF-8, integers big-endian fixed width, points
// compressed SEC1). Tags carry the protocol version ("bkv-v1/...").
import { Writer, checkU64, expectLength, utf8 } from "./bytes.js";
import { type Point, decodePoint, encodePoint } from "./group.js";
import { InvalidArgumentError } from "./errors.js";

export const TAG_EVALUATION = "bkv-v1/evaluation";
export const TAG_RESET_CONFIRM = "bkv-v1/reset/confirm";
export const TAG_RESET_DELETE = "bkv-v1/reset/delete";
export const TAG_RESET_OVERWRITE = "bkv-v1/reset/overwrite";
export const TAG_NODE_DESCRIPTOR = "bkv-v1/node-descriptor";
export const TAG_NODE_CERTIFICATE = "bkv-v1/node-certificate";

export const MAX_USER_ID_BYTES = 256;
export const MAX_CLUSTER_ID_BYTES = 256;
export const MAX_VERSION = 0xffffffff;

/** Throws InvalidArgumentError unless the user id is 1-256 bytes of UTF-8. */
export function validateUserId(user: string): void {
  validateName(user, "user id", MAX_USER_ID_BYTES);
}

export function validateClusterId(clusterId: string): void {
  validateName(clusterId, "cluster id", MAX_CLUSTER_ID_BYTES);
}

function validateName(s: string, what: string, max: number): void {
  if (typeof s !== "string") throw new InvalidArgumentError(`${what} must be a string`);
  const len = utf8(s).length;
  if (len < 1 || len > max) throw new InvalidArgumentError(`${what} must be 1 to ${max} bytes of UTF-8 (got ${len})`);
}

/** Throws InvalidArgumentError unless 1 <= version <= 2^32-1. */
export function validateVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 1 || version > MAX_VERSION) {
    throw new InvalidArgumentError(`record version ${String(version)} must be in [1, 2^32-1]`);
  }
}

/** Attempt ids are Raft log indexes: >= 1. */
export function validateAttemptId(attemptId: bigint | number): bigint {
  const id = checkU64(attemptId, "attempt id");
  if (id < 1n) throw new InvalidArgumentError("attempt id must be >= 1");
  return id;
}

export function validateNodeId(nodeId: number): void {
  if (!Number.isSafeInteger(nodeId) || nodeId < 1) throw new InvalidArgumentError(`node id ${String(nodeId)} is not a positive integer`);
}

function head(tag: string, clusterId: string, user: string, version: number): Writer {
  validateClusterId(clusterId);
  validateUserId(user);
  validateVersion(version);
  return new Writer().str(tag).str(clusterId).str(user).u32(version);
}

function pointBytes(p: Point | Uint8Array, what: string): Uint8Array {
  return encodePoint(p instanceof Uint8Array ? decodePoint(p, what) : p, true);
}

export interface EvaluationFields {
  clusterId: string;
  user: string;
  /** The record version the node evaluated. */
  version: number;
  attemptId: bigint | number;
  nodeId: number;
  /** B, as the node applied it. */
  blinded: Point | Uint8Array;
  /** k_i·B. */
  evaluated: Point | Uint8Array;
}

/**
 * What a node's identity key signs for an evaluation response:
 * lp16("bkv-v1/evaluation") || lp16(cluster) || lp16(user) || u32 version ||
 * u64 attempt id || u64 node id || B (33) || k_i·B (33).
 */
export function evaluationSigningMessage(f: EvaluationFields): Uint8Array {
  validateNodeId(f.nodeId);
  return head(TAG_EVALUATION, f.clusterId, f.user, f.version)
    .u64(validateAttemptId(f.attemptId))
    .u64(f.nodeId)
    .fixed(pointBytes(f.blinded, "B"))
    .fixed(pointBytes(f.evaluated, "k_i·B"))
    .bytes();
}

/** lp16(tag) || lp16(cluster) || lp16(user) || u32 version || u64 attempt id. */
export function confirmMessage(clusterId: string, user: string, version: number, attemptId: bigint | number): Uint8Array {
  return head(TAG_RESET_CONFIRM, clusterId, user, version).u64(validateAttemptId(attemptId)).bytes();
}

/** lp16(tag) || lp16(cluster) || lp16(user) || u32 version (the version deleted). */
export function deleteMessage(clusterId: string, user: string, version: number): Uint8Array {
  return head(TAG_RESET_DELETE, clusterId, user, version).bytes();
}

/**
 * lp16(tag) || lp16(cluster) || lp16(user) || u32 version (the version
 * overwritten) || 32-byte digest of the new record.
 */
export function overwriteMessage(clusterId: string, user: string, version: number, newRecordDigest: Uint8Array): Uint8Array {
  expectLength(newRecordDigest, "new record digest", 32);
  return head(TAG_RESET_OVERWRITE, clusterId, user, version).fixed(newRecordDigest).bytes();
}

export interface NodeDescriptorFields {
  clusterId: string;
  nodeId: number;
  address: string;
  agreementPublicKey: Uint8Array;
  identityPublicKey: Uint8Array;
}

/**
 * What a node's identity key signs for its cluster-descriptor entry:
 * lp16(tag) || lp16(cluster) || u64 node id || lp16(address) ||
 * agreement key (33, compressed) || identity key (33, compressed).
 */
export function nodeDescriptorMessage(f: NodeDescriptorFields): Uint8Array {
  return descriptorFields(TAG_NODE_DESCRIPTOR, f);
}

/**
 * What a node's mTLS certificate key signs for its cluster-descriptor entry
 * (a certified announcement): the same fields as nodeDescriptorMessage under
 * its own tag "bkv-v1/node-certificate", so neither signature stands for the other.
 */
export function nodeCertificateMessage(f: NodeDescriptorFields): Uint8Array {
  return descriptorFields(TAG_NODE_CERTIFICATE, f);
}

function descriptorFields(tag: string, f: NodeDescriptorFields): Uint8Array {
  validateClusterId(f.clusterId);
  validateNodeId(f.nodeId);
  if (typeof f.address !== "string" || f.address.length === 0) throw new InvalidArgumentError("node address must be non-empty");
  return new Writer()
    .str(tag)
    .str(f.clusterId)
    .u64(f.nodeId)
    .str(f.address)
    .fixed(pointBytes(f.agreementPublicKey, "agreement public key"))
    .fixed(pointBytes(f.identityPublicKey, "identity public key"))
    .bytes();
}
