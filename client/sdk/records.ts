// Records as the client sees them: the public part answered by GetRecordInfo,
// cross-checked between nodes, and the RegisterRequest built from a
// proto/crypto Registration.
import { create } from "@bufbuild/protobuf";
import { type GetRecordInfoResponse, RegisterRequestSchema, type RegisterRequest } from "../../proto/gen/bkv/v1/vault_pb.js";
import {
  ProtocolError,
  type RecordPublicPart,
  type Registration,
  equalBytes,
  publicPartDigest,
  validatePublicPart,
} from "../../proto/crypto/index.js";
import { RecordMismatchError } from "./errors.js";

/** A record's public part as one node answered it. */
export interface PublicRecord {
  readonly address: string;
  readonly record: RecordPublicPart;
  /** The node's digest of the full committed record. */
  readonly digest: Uint8Array;
  /** publicPartDigest: equal iff the public parts are equal. */
  readonly publicFingerprint: Uint8Array;
  readonly attemptsRemaining: number;
  readonly locked: boolean;
  readonly appliedIndex: bigint;
}

/** Converts and validates one GetRecordInfo answer; RecordMismatchError if it is malformed. */
export function publicRecordFrom(address: string, info: GetRecordInfoResponse): PublicRecord {
  const record: RecordPublicPart = {
    user: info.userId,
    version: info.version,
    threshold: info.threshold,
    guessLimit: info.guessLimit,
    shares: info.publicShares.map((s) => ({ nodeId: safeId(s.nodeId), publicShare: s.publicShare })),
    ciphertext: info.ciphertext,
    resetPublicKey: info.resetPublicKey,
    salt: info.salt,
    scrypt: { N: info.scryptParams?.n ?? 0, r: info.scryptParams?.r ?? 0, p: info.scryptParams?.p ?? 0 },
  };
  if (!info.locked) {
    try {
      validatePublicPart(record);
    } catch (err) {
      if (err instanceof ProtocolError) throw new RecordMismatchError(`node ${address} answered a malformed record: ${err.message}`);
      throw err;
    }
  }
  return {
    address,
    record,
    digest: info.recordDigest,
    publicFingerprint: info.locked ? new Uint8Array(0) : publicPartDigest(record),
    attemptsRemaining: info.attemptsRemaining,
    locked: info.locked,
    appliedIndex: info.appliedIndex,
  };
}

function safeId(id: bigint): number {
  if (id < 1n || id > BigInt(Number.MAX_SAFE_INTEGER)) throw new RecordMismatchError(`record share node id ${id} is out of range`);
  return Number(id);
}

/**
 * Picks the newest version among the answers and checks that every answer
 * at that version agrees on the digest and the public part. Older versions
 * are from lagging nodes and are ignored.
 */
export function agreeOnRecord(answers: readonly PublicRecord[]): PublicRecord {
  const newest = Math.max(...answers.map((a) => a.record.version));
  const current = answers.filter((a) => a.record.version === newest);
  const first = current[0];
  if (first === undefined) throw new Error("agreeOnRecord needs at least one answer");
  for (const other of current.slice(1)) {
    if (first.locked || other.locked) continue;
    if (!equalBytes(first.digest, other.digest) || !equalBytes(first.publicFingerprint, other.publicFingerprint)) {
      throw new RecordMismatchError(`nodes ${first.address} and ${other.address} answer different records for version ${newest}`);
    }
  }
  return current.find((a) => a.locked) ?? first;
}

/** The RegisterRequest of a registration (an overwrite when ownerSignature is given). */
export function registerRequest(reg: Registration, requestId: Uint8Array, ownerSignature?: Uint8Array): RegisterRequest {
  const r = reg.record;
  return create(RegisterRequestSchema, {
    requestId,
    userId: r.user,
    version: r.version,
    threshold: r.threshold,
    guessLimit: r.guessLimit,
    shares: r.shares.map((s) => ({ nodeId: BigInt(s.nodeId), publicShare: s.publicShare, wrappedShare: s.wrappedShare })),
    ciphertext: r.ciphertext,
    resetPublicKey: r.resetPublicKey,
    salt: r.salt,
    scryptParams: { n: r.scrypt.N, r: r.scrypt.r, p: r.scrypt.p },
    ownerSignature: ownerSignature ?? new Uint8Array(0),
  });
}
