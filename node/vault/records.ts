// The record transitions of DESIGN §5, as pure functions: each takes the
// current stored record (or undefined) and returns the result and, for an
// applied command, the record that replaces it. Stored records are never
// mutated, so a refused command cannot leave a half-applied change.
//
// Invariants of a StoredRecord (checked by assertStoredRecord):
//   0 <= attempts <= guessLimit; pending.length <= attempts;
//   pending attempt ids strictly increasing, and above confirmedAt;
//   locked => shares wiped, pending empty, attempts == guessLimit.
//
// Supersession: a confirmation applied at log index C resets the counter and
// settles every attempt pending at C. The record keeps C (confirmedAt), so an
// attempt id below C that is not pending is told apart ("superseded") from
// one never begun on this record.
import {
  type RegistrationRecord,
  encodeRecord,
  equalBytes,
  verifyConfirm,
  verifyDelete,
  verifyOverwrite,
} from "../../proto/crypto/index.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { type RefusalReason, type VaultError, type VaultResult, vaultError } from "./result.js";
import { VaultInvariantError } from "./errors.js";
import { type ThrottleSchedule, notBefore } from "./throttle.js";

export interface PendingAttempt {
  readonly attemptId: number;
  readonly blinded: Uint8Array;
}

export interface StoredRecord {
  /** With shares wiped ([]) once locked. */
  readonly record: RegistrationRecord;
  /** recordDigest of the record as registered (with its shares). */
  readonly digest: Uint8Array;
  /** The canonical encoding v1 of the registered record; null once locked (shares wiped). */
  readonly encoded: Uint8Array | null;
  readonly attempts: number;
  readonly locked: boolean;
  readonly pending: readonly PendingAttempt[];
  /** Log index of the last confirmation applied to this record version; 0 if none. */
  readonly confirmedAt: number;
  /** Leader time (unix ms) of the last counted begin; 0 if none. */
  readonly lastBeginAt: number;
}

/** A transition: the result, and for an applied command the next record (null = removed). */
export interface Transition {
  readonly result: VaultResult;
  readonly next?: StoredRecord | null;
  /**
   * Set by an applied confirmation only: the attempt id it confirmed (what
   * the owner's reset key signed; confirmedAt is where it was applied),
   * stored beside the record (keys.ts "c").
   */
  readonly confirmedAttempt?: number;
}

export function remaining(s: StoredRecord): number {
  return s.record.guessLimit - s.attempts;
}

/** A fresh (or overwritten) record: no attempts, nothing pending, not locked. */
export function freshRecord(record: RegistrationRecord): StoredRecord {
  const encoded = encodeRecord(record);
  return { record, digest: sha256(encoded), encoded, attempts: 0, locked: false, pending: [], confirmedAt: 0, lastBeginAt: 0 };
}

/**
 * Register or overwrite. The command was validated (including the owner
 * signature's presence: version 1 <=> no signature); the caller checked the
 * share holders against the voters.
 */
export function register(clusterId: string, cur: StoredRecord | undefined, record: RegistrationRecord, ownerSignature: Uint8Array): Transition {
  const user = record.user;
  if (record.version === 1) {
    if (cur !== undefined) return refuse("RECORD_EXISTS", `user ${quote(user)} already has a record (version ${cur.record.version}); an overwrite needs version ${cur.record.version + 1} and an owner signature`, cur);
    return registered(freshRecord(record));
  }
  if (cur === undefined) return refuse("RECORD_NOT_FOUND", `user ${quote(user)} has no record to overwrite`);
  if (record.version !== cur.record.version + 1) {
    return refuse("VERSION_MISMATCH", `an overwrite of version ${cur.record.version} must have version ${cur.record.version + 1} (got ${record.version})`, cur);
  }
  const next = freshRecord(record);
  const ref = { clusterId, user, version: cur.record.version };
  if (!verifyOverwrite(cur.record.resetPublicKey, ref, next.digest, ownerSignature)) {
    return refuse("BAD_SIGNATURE", `the owner signature does not verify with the reset key of version ${cur.record.version}`, cur);
  }
  return registered(next);
}

function registered(next: StoredRecord): Transition {
  const result: VaultResult = { ok: true, kind: "register", version: next.record.version, attemptsRemaining: remaining(next), recordDigest: next.digest };
  return { result, next };
}

/** What a begin is applied at: its log index (the attempt id), the leader time, the cluster's schedule. */
export interface BeginContext {
  readonly attemptId: number;
  readonly now: number;
  readonly throttle: ThrottleSchedule;
}

/**
 * BeginRecovery applied at log index `attemptId` (DESIGN §5 recovery step 1).
 * A begin bound to `recordDigest` (the record the client read) is refused
 * without counting when the committed record is another one; a begin before
 * the throttling delay has passed (throttle.ts) is refused without counting.
 */
export function begin(cur: StoredRecord | undefined, user: string, at: BeginContext, blinded: Uint8Array, recordDigest?: Uint8Array): Transition {
  const { attemptId, now } = at;
  if (cur === undefined) return refuse("RECORD_NOT_FOUND", `user ${quote(user)} has no record`);
  if (recordDigest !== undefined && !equalBytes(recordDigest, cur.digest)) {
    return refuse("RECORD_CHANGED", `the record of ${quote(user)} changed since it was read (overwritten, or deleted and registered again): read it again; no attempt was counted`, cur);
  }
  if (cur.locked) return refuse("RECORD_LOCKED", `the record of ${quote(user)} is locked: its guess limit was reached and its shares are destroyed`, cur);
  if (cur.attempts >= cur.record.guessLimit) {
    const next = lockRecord(cur);
    const result = vaultError("GUESS_LIMIT_REACHED", `the guess limit (${cur.record.guessLimit}) of ${quote(user)} is reached: its shares are now destroyed`, 0);
    return { result, next };
  }
  const wait = notBefore(at.throttle, cur.attempts, cur.lastBeginAt);
  if (now < wait) {
    const seconds = Math.ceil((wait - now) / 1000);
    return { result: { ...vaultError("THROTTLED", `too many attempts on the record of ${quote(user)} without a confirmation: the next one is allowed in ${seconds} s; no attempt was counted`, remaining(cur)), notBefore: wait } };
  }
  const next: StoredRecord = { ...cur, attempts: cur.attempts + 1, pending: [...cur.pending, { attemptId, blinded }], lastBeginAt: now };
  return { result: { ok: true, kind: "begin", attemptId, attemptsRemaining: remaining(next), version: next.record.version }, next };
}

/** Wipes the shares and the pending attempts for ever: the key is gone. */
function lockRecord(cur: StoredRecord): StoredRecord {
  const record: RegistrationRecord = { ...cur.record, shares: [] };
  return { record, digest: cur.digest, encoded: null, attempts: cur.record.guessLimit, locked: true, pending: [], confirmedAt: cur.confirmedAt, lastBeginAt: cur.lastBeginAt };
}

/**
 * ConfirmRecovery applied at log index `index` (DESIGN §5 recovery step 4):
 * a verified confirmation resets the counter and supersedes every pending attempt.
 */
export function confirm(clusterId: string, cur: StoredRecord | undefined, user: string, version: number, attemptId: number, signature: Uint8Array, index: number): Transition {
  const s = currentVersion(cur, user, version, "confirm");
  if ("ok" in s) return { result: s };
  if (!s.pending.some((p) => p.attemptId === attemptId)) return { result: notPending(s, attemptId) };
  if (!verifyConfirm(s.record.resetPublicKey, { clusterId, user, version }, attemptId, signature)) {
    return refuse("BAD_SIGNATURE", `the confirmation signature does not verify with the reset key of version ${version}`, s);
  }
  const next: StoredRecord = { ...s, attempts: 0, pending: [], confirmedAt: index };
  return { result: { ok: true, kind: "confirm", attemptsRemaining: remaining(next) }, next, confirmedAttempt: attemptId };
}

/** Why `attemptId` is not pending on `s`: superseded by a later confirmation, or never begun (or wiped by a lock). */
export function notPending(s: StoredRecord, attemptId: number): VaultError {
  const user = quote(s.record.user);
  if (attemptId < s.confirmedAt) {
    return vaultError("ATTEMPT_SUPERSEDED", `attempt ${attemptId} was superseded by a later confirmation of this record (${user}, confirmed at ${s.confirmedAt})`, remaining(s));
  }
  const why = s.locked ? "the record is locked" : "never begun on this record";
  return vaultError("ATTEMPT_NOT_FOUND", `attempt ${attemptId} is not pending for ${user} (${why})`, remaining(s));
}

/** Delete: an owner-signed removal of the named version (locked records included). */
export function remove(clusterId: string, cur: StoredRecord | undefined, user: string, version: number, signature: Uint8Array): Transition {
  const s = currentVersion(cur, user, version, "delete");
  if ("ok" in s) return { result: s };
  if (!verifyDelete(s.record.resetPublicKey, { clusterId, user, version }, signature)) {
    return refuse("BAD_SIGNATURE", `the delete signature does not verify with the reset key of version ${version}`, s);
  }
  return { result: { ok: true, kind: "delete" }, next: null };
}

/** The record if it exists at exactly this version, else the refusal. */
function currentVersion(cur: StoredRecord | undefined, user: string, version: number, what: string): StoredRecord | VaultError {
  if (cur === undefined) return vaultError("RECORD_NOT_FOUND", `user ${quote(user)} has no record`);
  if (cur.record.version !== version) {
    return vaultError("VERSION_MISMATCH", `cannot ${what} version ${version}: the record of ${quote(user)} is at version ${cur.record.version}`, remaining(cur));
  }
  return cur;
}

function refuse(reason: RefusalReason, message: string, cur?: StoredRecord): Transition {
  return { result: vaultError(reason, message, cur === undefined ? undefined : remaining(cur)) };
}

/** User ids in messages: quoted and bounded (they are 1-256 bytes, never secrets). */
function quote(user: string): string {
  return JSON.stringify(user);
}

/** Throws VaultInvariantError if a stored record breaks an invariant (a bug, or a forged snapshot). */
export function assertStoredRecord(s: StoredRecord): void {
  const limit = s.record.guessLimit;
  const fail = (why: string) => {
    throw new VaultInvariantError(`record ${quote(s.record.user)}: ${why}`);
  };
  if (!Number.isSafeInteger(s.attempts) || s.attempts < 0 || s.attempts > limit) fail(`attempts ${s.attempts} outside [0, ${limit}]`);
  if (s.pending.length > s.attempts) fail(`${s.pending.length} pending attempts but only ${s.attempts} counted`);
  if (!Number.isSafeInteger(s.confirmedAt) || s.confirmedAt < 0) fail(`confirmed at ${s.confirmedAt}`);
  if (!Number.isSafeInteger(s.lastBeginAt) || s.lastBeginAt < 0) fail(`last begin at ${s.lastBeginAt}`);
  if ((s.pending[0]?.attemptId ?? Infinity) <= s.confirmedAt) fail("an attempt pending from before the last confirmation");
  for (let i = 1; i < s.pending.length; i++) {
    if ((s.pending[i]?.attemptId ?? 0) <= (s.pending[i - 1]?.attemptId ?? 0)) fail("pending attempt ids are not increasing");
  }
  if (s.locked && (s.record.shares.length !== 0 || s.pending.length !== 0 || s.attempts !== limit || s.encoded !== null)) {
    fail("locked but shares or pending attempts remain");
  }
  if (!s.locked && s.encoded === null) fail("unlocked without its encoding");
}
