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
 * How many nodes must serve a record state alike before the client believes
 * it when a single node could have made it up: a "locked" record, or a state
 * newer than another node's answer. A majority of the pinned nodes: the
 * quorum Raft commits with, so every committed state is applied by at least
 * that many nodes and, reads being linearizable, served by every honest one
 * that answers; no minority of nodes (one rogue node in particular) reaches
 * it alone, and no two states can both have it. It asks no more than the
 * registration read-back (min(t+1, n) nodes, DESIGN §5 step 7) for the
 * default threshold, and no more nodes than a recovery needs (t) whenever
 * t is at least a majority, so an honest lock-out with a minority of the
 * nodes down still reads as locked.
 */
export function recordQuorum(nodes: number): number {
  return Math.floor(nodes / 2) + 1;
}

/** What one read's answers establish (agreeOnRecord). */
export type RecordVerdict =
  | { readonly kind: "agreed"; readonly answer: PublicRecord }
  /** The newest state is served by fewer than the quorum; `others` are the answers that do not serve it. */
  | { readonly kind: "unconfirmed"; readonly claim: readonly PublicRecord[]; readonly others: readonly PublicRecord[]; readonly why: string };

/**
 * Cross-checks every answer and picks the state to act on.
 *
 * - Answers at the same version must be the same record (digest, and the
 *   public part while unlocked); otherwise RecordMismatchError naming both
 *   nodes: honest nodes never differ there.
 * - A record's states are ordered: a higher version is newer, and locked is
 *   newer than unlocked at the same version. Answers older than the newest
 *   state are honest nodes read before a change (an overwrite, a lock) and
 *   are not acted on.
 * - The newest state is agreed when `quorum` nodes serve it; when every
 *   answer serves it unlocked it is agreed with fewer (nodes down): the
 *   BeginRecovery that follows is bound to its digest, so a leader holding
 *   another record refuses it without counting (RECORD_CHANGED). Otherwise —
 *   locked, or newer than another node's answer, with fewer than `quorum`
 *   nodes behind it — it is "unconfirmed", naming the nodes that serve it.
 */
export function agreeOnRecord(answers: readonly PublicRecord[], quorum: number): RecordVerdict {
  if (answers.length === 0) throw new Error("agreeOnRecord needs at least one answer");
  checkSameVersionsAgree(answers);
  const newest = Math.max(...answers.map(stateRank));
  const claim = answers.filter((a) => stateRank(a) === newest);
  const others = answers.filter((a) => stateRank(a) !== newest);
  const first = claim[0] as PublicRecord;
  if (claim.length >= quorum || (!first.locked && others.length === 0)) return { kind: "agreed", answer: first };
  return { kind: "unconfirmed", claim, others, why: unconfirmedWhy(claim, others, quorum) };
}

/** The order of a record's states in time: version, then locked after unlocked. */
function stateRank(a: PublicRecord): number {
  return a.record.version * 2 + (a.locked ? 1 : 0);
}

function describeState(a: PublicRecord): string {
  return `version ${a.record.version}${a.locked ? " locked" : ""}`;
}

function checkSameVersionsAgree(answers: readonly PublicRecord[]): void {
  for (const [i, a] of answers.entries()) {
    for (const b of answers.slice(i + 1)) {
      if (a.record.version !== b.record.version) continue;
      const sameFingerprint = a.locked || b.locked || equalBytes(a.publicFingerprint, b.publicFingerprint);
      if (!equalBytes(a.digest, b.digest) || !sameFingerprint) {
        throw new RecordMismatchError(`nodes ${a.address} and ${b.address} answer different records for version ${a.record.version}`);
      }
    }
  }
}

function unconfirmedWhy(claim: readonly PublicRecord[], others: readonly PublicRecord[], quorum: number): string {
  const who = claim.map((a) => a.address).join(", ");
  const rest = others.length === 0 ? "no other node answered" : others.map((a) => `${a.address} serves ${describeState(a)}`).join(", ");
  return `node(s) ${who} serve the record as ${describeState(claim[0] as PublicRecord)}, which ${quorum} nodes must serve alike to be believed; ${rest}`;
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
