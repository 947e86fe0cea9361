// A registration record, its canonical binary encoding (v1) and its digest.
//
// Encoding v1 (big-endian; lp16 = u16 length || bytes):
//   "bkvR" || u8 1 || lp16(user UTF-8) || u32 version || u16 t || u8 guess_limit
//   || u16 count || count × (u64 node id || K_i (33, compressed) || lp16(wrap blob v1 or v2, wrap.ts))
//   || lp16(C) || reset_pk (33, compressed) || salt (16) || u32 N || u32 r || u32 p
// Shares are in strictly ascending node id order; the encoder sorts them, the
// decoder refuses any other order, so one record has exactly one encoding.
// digest = SHA-256(encoding).
import { sha256 } from "@noble/hashes/sha2.js";
import { Reader, Writer, equalBytes, expectLength } from "./bytes.js";
import { COMPRESSED_POINT_LENGTH, decodePoint } from "./group.js";
import { validateIds, validateThreshold } from "./shamir.js";
import { parseWrappedShare } from "./wrap.js";
import { validateCiphertext } from "./aead.js";
import { SALT_LENGTH, type ScryptParams, validateScryptParams } from "./kdf.js";
import { validateUserId, validateVersion } from "./messages.js";
import { InvalidArgumentError, InvalidEncodingError, UnsupportedVersionError } from "./errors.js";

export const RECORD_MAGIC = Uint8Array.of(0x62, 0x6b, 0x76, 0x52); // "bkvR"
export const PUBLIC_PART_MAGIC = Uint8Array.of(0x62, 0x6b, 0x76, 0x50); // "bkvP"
export const RECORD_VERSION = 1;
export const MAX_GUESS_LIMIT = 255;
export const DIGEST_LENGTH = 32;

/** A share as every node may show it: holder and commitment, no wrapped key. */
export interface PublicShare {
  /** The holder's permanent node id, the share's x-coordinate. */
  readonly nodeId: number;
  /** K_i = k_i·G, 33 bytes compressed. */
  readonly publicShare: Uint8Array;
}

export interface RecordShare extends PublicShare {
  /** Wrap blob of k_i to the node's agreement key: v2 (bound to this record, share-binding.ts), or v1 in older records. */
  readonly wrappedShare: Uint8Array;
}

/**
 * What a client needs to recover: a record without its wrapped shares (what
 * GetRecordInfo answers). Every RegistrationRecord is one.
 */
export interface RecordPublicPart {
  readonly user: string;
  readonly version: number;
  readonly threshold: number;
  readonly guessLimit: number;
  readonly shares: readonly PublicShare[];
  /** C v1 (aead.ts). */
  readonly ciphertext: Uint8Array;
  /** 33 bytes compressed. */
  readonly resetPublicKey: Uint8Array;
  readonly salt: Uint8Array;
  readonly scrypt: ScryptParams;
}

export interface RegistrationRecord extends RecordPublicPart {
  readonly shares: readonly RecordShare[];
}

export function validateGuessLimit(guessLimit: number): void {
  if (!Number.isSafeInteger(guessLimit) || guessLimit < 1 || guessLimit > MAX_GUESS_LIMIT) {
    throw new InvalidArgumentError(`guess limit ${String(guessLimit)} must be in [1, ${MAX_GUESS_LIMIT}]`);
  }
}

/** Throws a ProtocolError naming the first field that is out of range or malformed. */
export function validateRecord(rec: RegistrationRecord): void {
  validatePublicPart(rec);
  for (const s of rec.shares) parseWrappedShare(s.wrappedShare);
}

/** validateRecord without the wrapped shares (which it does not look at). */
export function validatePublicPart(rec: RecordPublicPart): void {
  validateUserId(rec.user);
  validateVersion(rec.version);
  validateGuessLimit(rec.guessLimit);
  if (!Array.isArray(rec.shares)) throw new InvalidArgumentError("shares must be an array");
  validateThreshold(rec.threshold, rec.shares.length);
  validateIds(rec.shares.map((s) => s.nodeId));
  for (const s of rec.shares) {
    expectLength(s.publicShare, `K_${s.nodeId}`, COMPRESSED_POINT_LENGTH);
    decodePoint(s.publicShare, `K_${s.nodeId}`);
  }
  validateCiphertext(rec.ciphertext);
  expectLength(rec.resetPublicKey, "reset public key", COMPRESSED_POINT_LENGTH);
  decodePoint(rec.resetPublicKey, "reset public key");
  expectLength(rec.salt, "salt", SALT_LENGTH);
  validateScryptParams(rec.scrypt);
}

/** The canonical encoding v1 of a valid record. */
export function encodeRecord(rec: RegistrationRecord): Uint8Array {
  validateRecord(rec);
  return writeRecord(RECORD_MAGIC, rec, (w, s) => w.lp16((s as RecordShare).wrappedShare));
}

/**
 * The canonical encoding of a record's public part: as encodeRecord, with
 * magic "bkvP" and no wrapped shares. Two nodes' GetRecordInfo answers agree
 * iff these encodings (or their SHA-256, publicPartDigest) are equal.
 */
export function encodePublicPart(rec: RecordPublicPart): Uint8Array {
  validatePublicPart(rec);
  return writeRecord(PUBLIC_PART_MAGIC, rec, () => undefined);
}

export function publicPartDigest(rec: RecordPublicPart): Uint8Array {
  return sha256(encodePublicPart(rec));
}

/**
 * publicPartDigest of a record whose fields were validated already (a
 * decoded command's, or one a client just built): the curve points are not
 * decoded again, which costs most of the digest.
 */
export function validatedPublicPartDigest(rec: RecordPublicPart): Uint8Array {
  return sha256(writeRecord(PUBLIC_PART_MAGIC, rec, () => undefined));
}

function writeRecord(magic: Uint8Array, rec: RecordPublicPart, writeWrapped: (w: Writer, s: PublicShare) => void): Uint8Array {
  const w = writeHead(new Writer().fixed(magic).u8(RECORD_VERSION), rec).u16(rec.shares.length);
  for (const s of [...rec.shares].sort((a, b) => a.nodeId - b.nodeId)) {
    w.u64(s.nodeId).fixed(s.publicShare);
    writeWrapped(w, s);
  }
  return writeTail(w, rec).bytes();
}

/** The fields before the share list: user, version, threshold, guess limit. */
function writeHead(w: Writer, rec: RecordPublicPart): Writer {
  return w.str(rec.user).u32(rec.version).u16(rec.threshold).u8(rec.guessLimit);
}

/** The fields after the share list: ciphertext, reset key, salt, scrypt parameters. */
function writeTail(w: Writer, rec: RecordPublicPart): Writer {
  return w.lp16(rec.ciphertext).fixed(rec.resetPublicKey).fixed(rec.salt).u32(rec.scrypt.N).u32(rec.scrypt.r).u32(rec.scrypt.p);
}

/**
 * A locked record without its shares (the vault snapshot stores locked
 * records so): the fields of encoding v1 without magic, format and share list.
 */
export function encodeWipedRecord(rec: RecordPublicPart): Uint8Array {
  return writeTail(writeHead(new Writer(), rec), rec).bytes();
}

/** Parses and validates encodeWipedRecord's bytes; the record has no shares. */
export function decodeWipedRecord(bytes: Uint8Array): RegistrationRecord {
  const r = new Reader(bytes, "locked record");
  const head = readHead(r);
  const tail = readTail(r);
  r.end();
  validateUserId(head.user);
  validateVersion(head.version);
  validateThreshold(head.threshold, head.threshold);
  validateGuessLimit(head.guessLimit);
  validateCiphertext(tail.ciphertext);
  decodePoint(tail.resetPublicKey, "reset public key");
  validateScryptParams(tail.scrypt);
  return { ...head, shares: [], ...tail };
}

function readHead(r: Reader): Pick<RegistrationRecord, "user" | "version" | "threshold" | "guessLimit"> {
  return { user: r.str(), version: r.u32(), threshold: r.u16(), guessLimit: r.u8() };
}

function readTail(r: Reader): Pick<RegistrationRecord, "ciphertext" | "resetPublicKey" | "salt" | "scrypt"> {
  return { ciphertext: r.lp16(), resetPublicKey: r.fixed(COMPRESSED_POINT_LENGTH), salt: r.fixed(SALT_LENGTH), scrypt: { N: r.u32(), r: r.u32(), p: r.u32() } };
}

/** Parses and validates encoding v1 (InvalidEncodingError, UnsupportedVersionError, ...). */
export function decodeRecord(bytes: Uint8Array): RegistrationRecord {
  const rec = parseTrustedRecord(bytes);
  validateRecord(rec);
  return rec;
}

/**
 * Parses a record encoding v1 whose fields were validated when it was first
 * decoded (a vault node's own store, or a checksummed snapshot of records
 * every node validated on apply): the layout is checked, the field values
 * (curve points, ranges) are not. Anything from a client goes through
 * decodeRecord.
 */
export function parseTrustedRecord(bytes: Uint8Array): RegistrationRecord {
  const r = new Reader(bytes, "record");
  if (!equalBytes(r.fixed(RECORD_MAGIC.length), RECORD_MAGIC)) throw new InvalidEncodingError("not a bkv record (bad magic)");
  const format = r.u8();
  if (format !== RECORD_VERSION) throw new UnsupportedVersionError("record encoding", format);
  const head = readHead(r);
  const shares = readShares(r, r.u16());
  const tail = readTail(r);
  r.end();
  return { ...head, shares, ...tail };
}

function readShares(r: Reader, count: number): RecordShare[] {
  const shares: RecordShare[] = [];
  for (let i = 0; i < count; i++) {
    const id = r.u64();
    const prev = shares[shares.length - 1];
    if (id > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidEncodingError("record node id is too large");
    const nodeId = Number(id);
    if (prev !== undefined && nodeId <= prev.nodeId) throw new InvalidEncodingError("record shares are not in ascending node id order");
    shares.push({ nodeId, publicShare: r.fixed(COMPRESSED_POINT_LENGTH), wrappedShare: r.lp16() });
  }
  return shares;
}

/** SHA-256 of the canonical encoding: what clients compare across t+1 nodes. */
export function recordDigest(rec: RegistrationRecord): Uint8Array {
  return sha256(encodeRecord(rec));
}
