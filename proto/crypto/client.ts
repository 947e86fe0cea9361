// High-level client steps of DESIGN §5: registration, blinding for a
// recovery, and robust finishing of a recovery. Pure computation: the client
// SDK does the network calls and the t+1 digest read-back.
import { randomBytes } from "node:crypto";
import { equalBytes, expectLength } from "./bytes.js";
import { G, type Point, decodePoint, encodePoint, randomScalar } from "./group.js";
import { BKV_V1, blind, finalize, hashToGroup, unblind } from "./oprf.js";
import { type EvaluatedPoint, splitSecret, validateIds, validateThreshold } from "./shamir.js";
import { joinUnboundShare, sealShare } from "./wrap.js";
import { bindShares } from "./share-binding.js";
import { BACKUP_KEY_LENGTH, decryptBackupKey, encryptBackupKey } from "./aead.js";
import {
  DEFAULT_SCRYPT,
  SALT_LENGTH,
  type ScryptParams,
  deriveKeys,
  hardenPassword,
  hardenPasswordAsync,
  passwordBytes,
  validateScryptParams,
} from "./kdf.js";
import { type RecordPublicPart, type RegistrationRecord, recordDigest, validateGuessLimit, validatePublicPart } from "./record.js";
import { signOverwrite } from "./signatures.js";
import { validateClusterId, validateUserId, validateVersion } from "./messages.js";
import { IdentityPointError, InvalidArgumentError, InvalidPointError, ProtocolError, RecoveryRecordMismatchError } from "./errors.js";
import { combineRobustly } from "./robust.js";

export interface NodeKey {
  readonly id: number;
  /** The node's agreement public key (33 or 65 bytes SEC1). */
  readonly agreementPublicKey: Uint8Array;
}

export interface RegistrationInput {
  readonly clusterId: string;
  readonly user: string;
  readonly password: string;
  /** The 32-byte backup key K. */
  readonly backupKey: Uint8Array;
  readonly threshold: number;
  readonly guessLimit: number;
  /** The pinned descriptor's nodes: each gets one share. */
  readonly nodes: readonly NodeKey[];
  /** 1 for a new record; current + 1 for an overwrite. Default 1. */
  readonly version?: number;
  readonly scrypt?: ScryptParams;
  /** For an overwrite: the current record's reset key, to sign the overwrite. */
  readonly previousResetPrivateKey?: bigint;
  /**
   * Unbound shares (wrap blob v1), for a cluster whose state does not take
   * bound ones yet (it refused them: BOUND_SHARES_NOT_ACTIVE). Default
   * false: every share is bound to its record (share-binding.ts).
   */
  readonly unboundShares?: boolean;
}

export interface Registration {
  readonly record: RegistrationRecord;
  readonly digest: Uint8Array;
  /** Secret: kept by the device that registered (it can also be recovered). */
  readonly resetPrivateKey: bigint;
  /** Present iff previousResetPrivateKey was given: the owner signature of the overwrite. */
  readonly ownerSignature?: Uint8Array;
}

/** Builds a registration record (DESIGN §5 registration steps 1-6). Runs scrypt on this thread. */
export function createRegistration(input: RegistrationInput): Registration {
  const { salt, scrypt } = prepareRegistration(input);
  return buildRegistration(input, salt, hardenPassword(input.password, salt, scrypt));
}

/** createRegistration with scrypt on the libuv thread pool. */
export async function createRegistrationAsync(input: RegistrationInput): Promise<Registration> {
  const { salt, scrypt } = prepareRegistration(input);
  return buildRegistration(input, salt, await hardenPasswordAsync(input.password, salt, scrypt));
}

/** Validates everything that can be checked before the (slow) hardening; draws the salt. */
function prepareRegistration(input: RegistrationInput): { salt: Uint8Array; scrypt: ScryptParams } {
  validateClusterId(input.clusterId);
  validateUserId(input.user);
  validateVersion(input.version ?? 1);
  expectLength(input.backupKey, "backup key", BACKUP_KEY_LENGTH);
  validateIds(input.nodes.map((n) => n.id));
  validateThreshold(input.threshold, input.nodes.length);
  validateGuessLimit(input.guessLimit);
  for (const n of input.nodes) decodePoint(n.agreementPublicKey, `agreement public key of node ${n.id}`);
  if (input.previousResetPrivateKey !== undefined && (input.version ?? 1) < 2) {
    throw new InvalidArgumentError("an overwrite needs version >= 2");
  }
  const scrypt = input.scrypt ?? DEFAULT_SCRYPT;
  validateScryptParams(scrypt);
  passwordBytes(input.password);
  return { salt: new Uint8Array(randomBytes(SALT_LENGTH)), scrypt };
}

function buildRegistration(input: RegistrationInput, salt: Uint8Array, pwh: Uint8Array): Registration {
  const version = input.version ?? 1;
  const k = randomScalar();
  const shares = splitSecret(k, input.threshold, input.nodes.map((n) => n.id));
  const keys = deriveKeys(finalize(pwh, hashToGroup(pwh, BKV_V1).multiply(k)));
  const sealed = input.nodes.map((node, i) => {
    const share = shares[i]?.share ?? 0n;
    return { nodeId: node.id, publicShare: encodePoint(G.multiply(share)), ...sealShare(node.agreementPublicKey, share) };
  });
  const publicPart: RecordPublicPart = {
    user: input.user,
    version,
    threshold: input.threshold,
    guessLimit: input.guessLimit,
    shares: sealed.map((s) => ({ nodeId: s.nodeId, publicShare: s.publicShare })),
    ciphertext: encryptBackupKey(keys.encKey, input.backupKey, input.user, version),
    resetPublicKey: keys.resetPublicKey,
    salt,
    scrypt: input.scrypt ?? DEFAULT_SCRYPT,
  };
  const recordShares = input.unboundShares === true
    ? sealed.map((s) => ({ nodeId: s.nodeId, publicShare: s.publicShare, wrappedShare: joinUnboundShare(s) }))
    : bindShares(input.clusterId, publicPart, sealed);
  const record: RegistrationRecord = { ...publicPart, shares: recordShares };
  const digest = recordDigest(record);
  const registration: Registration = { record, digest, resetPrivateKey: keys.resetPrivateKey };
  if (input.previousResetPrivateKey === undefined) return registration;
  const ref = { clusterId: input.clusterId, user: input.user, version: version - 1 };
  return { ...registration, ownerSignature: signOverwrite(input.previousResetPrivateKey, ref, digest) };
}

/** Client-side secret state between BeginRecovery and finishRecovery. Never send or log it. */
export interface RecoveryState {
  readonly user: string;
  readonly version: number;
  readonly salt: Uint8Array;
  readonly pwh: Uint8Array;
  readonly blind: bigint;
  readonly blinded: Point;
}

/** Hardens the password with the record's parameters and blinds it. Returns B (33 bytes) to send. */
export function startRecovery(password: string, record: RecordPublicPart): { blinded: Uint8Array; state: RecoveryState } {
  validatePublicPart(record);
  return blindForRecovery(record, hardenPassword(password, record.salt, record.scrypt));
}

/** startRecovery with scrypt on the libuv thread pool. */
export async function startRecoveryAsync(password: string, record: RecordPublicPart): Promise<{ blinded: Uint8Array; state: RecoveryState }> {
  validatePublicPart(record);
  return blindForRecovery(record, await hardenPasswordAsync(password, record.salt, record.scrypt));
}

function blindForRecovery(record: RecordPublicPart, pwh: Uint8Array): { blinded: Uint8Array; state: RecoveryState } {
  const b = blind(pwh, BKV_V1);
  const state = { user: record.user, version: record.version, salt: record.salt, pwh, blind: b.blind, blinded: b.blinded };
  return { blinded: encodePoint(b.blinded), state };
}

export interface NodeEvaluation {
  readonly nodeId: number;
  /** k_i·B as the node returned it (SEC1 bytes) or decoded. */
  readonly point: Uint8Array | Point;
}

export interface FaultyAnswer {
  readonly nodeId: number;
  readonly reason: string;
}

export interface Recovery {
  readonly backupKey: Uint8Array;
  readonly resetPrivateKey: bigint;
  readonly resetPublicKey: Uint8Array;
  /** The t nodes whose answers opened the record. */
  readonly usedNodeIds: number[];
  /** Answers that were malformed or off the winning polynomial. */
  readonly faulty: FaultyAnswer[];
}

/**
 * Combines the evaluations (at least t, from distinct share holders; t+1 or
 * more to detect and skip a faulty node), unblinds, finalizes and opens C.
 * Throws OprfWrongPasswordError, OprfInconsistentEvaluationsError,
 * InsufficientEvaluationsError, or RecoveryRecordMismatchError (the state is for
 * another record, or C does not open although y matches the reset key).
 */
export function finishRecovery(state: RecoveryState, record: RecordPublicPart, evaluations: readonly NodeEvaluation[]): Recovery {
  validatePublicPart(record);
  if (state.user !== record.user || state.version !== record.version || !equalBytes(state.salt, record.salt)) {
    throw new RecoveryRecordMismatchError("the recovery state was made for another record");
  }
  const { answers, faulty } = decodeEvaluations(record, evaluations);
  const result = combineRobustly(answers, record.threshold, (kB) => openRecord(state, record, kB));
  const badIds = result.faultyNodeIds.map((nodeId) => ({ nodeId, reason: "evaluation is off the other answers' polynomial" }));
  return { ...result.value, usedNodeIds: result.usedNodeIds, faulty: [...faulty, ...badIds] };
}

function decodeEvaluations(record: RecordPublicPart, evaluations: readonly NodeEvaluation[]) {
  const holders = new Set(record.shares.map((s) => s.nodeId));
  const seen = new Set<number>();
  const answers: EvaluatedPoint[] = [];
  const faulty: FaultyAnswer[] = [];
  for (const e of evaluations) {
    if (!holders.has(e.nodeId)) throw new InvalidArgumentError(`node ${String(e.nodeId)} holds no share of this record`);
    if (seen.has(e.nodeId)) throw new InvalidArgumentError(`two evaluations from node ${e.nodeId}`);
    seen.add(e.nodeId);
    try {
      const point = e.point instanceof Uint8Array ? decodePoint(e.point, `evaluation of node ${e.nodeId}`) : e.point;
      if (point.is0()) throw new IdentityPointError(`evaluation of node ${e.nodeId}`);
      point.assertValidity();
      answers.push({ id: e.nodeId, point });
    } catch (err) {
      const reason = err instanceof ProtocolError ? err.message : new InvalidPointError(`evaluation of node ${e.nodeId}`).message;
      faulty.push({ nodeId: e.nodeId, reason });
    }
  }
  return { answers, faulty };
}

/** Opens the record with a candidate k·B, or returns null if it is not the right one. */
function openRecord(state: RecoveryState, record: RecordPublicPart, kB: Point) {
  const keys = deriveKeys(finalize(state.pwh, unblind(state.blind, kB)));
  // The reset public key commits to y: it rejects a wrong candidate before
  // AES-GCM (which is not key-committing) is tried.
  if (!equalBytes(keys.resetPublicKey, record.resetPublicKey)) return null;
  const backupKey = decryptBackupKey(keys.encKey, record.ciphertext, record.user, record.version);
  if (backupKey === null) throw new RecoveryRecordMismatchError("the record's ciphertext does not open with the key that matches its reset key");
  return { backupKey, resetPrivateKey: keys.resetPrivateKey, resetPublicKey: keys.resetPublicKey };
}
