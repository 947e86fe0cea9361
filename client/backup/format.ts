// The bkv backup-file format v1 (docs/client.md, "Backup-file format"):
// a 76-byte header, then chunks sealed with AES-256-GCM under a per-file key,
// in the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015): the
// nonce carries the chunk counter and a final-chunk flag, and every chunk's
// AAD is the whole header. Non-final chunks hold exactly `chunkSize`
// plaintext bytes; the one final chunk holds 0 to chunkSize-1. So dropping,
// reordering or duplicating chunks, cutting the file anywhere, or changing
// any header byte makes decryption fail.
//
//   header = magic "BKVF" || u8 version 1 || u8 suite 1 || u16 reserved 0
//            || u32 chunkSize || salt (32) || keyCheck (16) || headerTag (16)
//   fileKey  = HKDF-SHA256(ikm = backupKey, salt, info "bkv-v1/backup-file", 32)
//   keyCheck = HKDF-SHA256(ikm = backupKey, salt, info "bkv-v1/backup-file/key-check", 16)
//   headerTag = GCM tag of (fileKey, nonce FF FF FF FF || 00×8, empty plaintext, aad header[0..60))
//   chunk i  = AES-256-GCM(fileKey, nonce 00 00 00 || final(0|1) || u64 i, aad header) || tag (16)
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { equalBytes } from "../../proto/crypto/index.js";
import { BackupFormatError, BackupIntegrityError, BackupKeyError } from "./errors.js";

export const MAGIC = Uint8Array.of(0x42, 0x4b, 0x56, 0x46); // "BKVF"
export const FORMAT_VERSION = 1;
export const SUITE_AES256GCM_HKDF_STREAM = 1;
export const DEFAULT_CHUNK_SIZE = 64 * 1024;
export const MIN_CHUNK_SIZE = 1 << 10;
export const MAX_CHUNK_SIZE = 1 << 24;
export const SALT_LENGTH = 32;
export const KEY_CHECK_LENGTH = 16;
export const TAG_LENGTH = 16;
/** Bytes of the header covered by the header tag. */
export const HEADER_BODY_LENGTH = 60;
export const HEADER_LENGTH = HEADER_BODY_LENGTH + TAG_LENGTH;
export const BACKUP_KEY_LENGTH = 32;

const INFO_FILE_KEY = new TextEncoder().encode("bkv-v1/backup-file");
const INFO_KEY_CHECK = new TextEncoder().encode("bkv-v1/backup-file/key-check");
const HEADER_NONCE = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0);

/** A parsed, authenticated header and the file key it unlocks. */
export interface FileHeader {
  readonly bytes: Uint8Array;
  readonly chunkSize: number;
  readonly fileKey: Uint8Array;
}

function checkKey(backupKey: Uint8Array): void {
  if (!(backupKey instanceof Uint8Array) || backupKey.length !== BACKUP_KEY_LENGTH) {
    throw new BackupKeyError(`a backup key is ${BACKUP_KEY_LENGTH} bytes`);
  }
}

function deriveFileKeys(backupKey: Uint8Array, salt: Uint8Array): { fileKey: Uint8Array; keyCheck: Uint8Array } {
  return {
    fileKey: hkdf(sha256, backupKey, salt, INFO_FILE_KEY, 32),
    keyCheck: hkdf(sha256, backupKey, salt, INFO_KEY_CHECK, KEY_CHECK_LENGTH),
  };
}

/** A new header with a random salt. */
export function newHeader(backupKey: Uint8Array, chunkSize = DEFAULT_CHUNK_SIZE): FileHeader {
  checkKey(backupKey);
  checkChunkSize(chunkSize);
  const salt = new Uint8Array(randomBytes(SALT_LENGTH));
  const { fileKey, keyCheck } = deriveFileKeys(backupKey, salt);
  const bytes = new Uint8Array(HEADER_LENGTH);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  bytes[4] = FORMAT_VERSION;
  bytes[5] = SUITE_AES256GCM_HKDF_STREAM;
  view.setUint32(8, chunkSize);
  bytes.set(salt, 12);
  bytes.set(keyCheck, 44);
  bytes.set(headerTag(fileKey, bytes.subarray(0, HEADER_BODY_LENGTH)), HEADER_BODY_LENGTH);
  return { bytes, chunkSize, fileKey };
}

/** Parses and authenticates a header: BackupFormatError, BackupKeyError, or BackupIntegrityError("header"). */
export function openHeader(backupKey: Uint8Array, bytes: Uint8Array): FileHeader {
  checkKey(backupKey);
  if (bytes.length < HEADER_LENGTH) throw new BackupFormatError(`too short to be a bkv backup file (${bytes.length} bytes)`);
  if (!equalBytes(bytes.subarray(0, 4), MAGIC)) throw new BackupFormatError("not a bkv backup file (bad magic)");
  if (bytes[4] !== FORMAT_VERSION) throw new BackupFormatError(`unsupported backup format version ${bytes[4]}`);
  if (bytes[5] !== SUITE_AES256GCM_HKDF_STREAM) throw new BackupFormatError(`unsupported backup cipher suite ${bytes[5]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(6) !== 0) throw new BackupFormatError("reserved header bytes are not zero");
  const chunkSize = view.getUint32(8);
  checkChunkSize(chunkSize);
  const { fileKey, keyCheck } = deriveFileKeys(backupKey, bytes.subarray(12, 44));
  if (!equalBytes(keyCheck, bytes.subarray(44, 60))) {
    throw new BackupKeyError("the key does not open this file (wrong key, or the file's salt or key check was altered)");
  }
  if (!equalBytes(headerTag(fileKey, bytes.subarray(0, HEADER_BODY_LENGTH)), bytes.subarray(HEADER_BODY_LENGTH, HEADER_LENGTH))) {
    throw new BackupIntegrityError("header", undefined, "the header was altered");
  }
  return { bytes: bytes.slice(0, HEADER_LENGTH), chunkSize, fileKey };
}

function checkChunkSize(chunkSize: number): void {
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new BackupFormatError(`chunk size ${chunkSize} is outside [${MIN_CHUNK_SIZE}, ${MAX_CHUNK_SIZE}]`);
  }
}

function headerTag(fileKey: Uint8Array, body: Uint8Array): Uint8Array {
  const gcm = createCipheriv("aes-256-gcm", fileKey, HEADER_NONCE, { authTagLength: TAG_LENGTH });
  gcm.setAAD(body);
  gcm.final();
  return new Uint8Array(gcm.getAuthTag());
}

/** STREAM nonce: 00 00 00 || final flag || u64 big-endian chunk index. */
export function chunkNonce(index: number, final: boolean): Uint8Array {
  const nonce = new Uint8Array(12);
  nonce[3] = final ? 1 : 0;
  new DataView(nonce.buffer).setBigUint64(4, BigInt(index));
  return nonce;
}

/** Seals chunk `index`: ciphertext || tag. */
export function sealChunk(h: FileHeader, index: number, final: boolean, plaintext: Uint8Array): Buffer {
  const gcm = createCipheriv("aes-256-gcm", h.fileKey, chunkNonce(index, final), { authTagLength: TAG_LENGTH });
  gcm.setAAD(h.bytes);
  return Buffer.concat([gcm.update(plaintext), gcm.final(), gcm.getAuthTag()]);
}

/** Opens chunk `index`; BackupIntegrityError when it does not authenticate at this place. */
export function openChunk(h: FileHeader, index: number, final: boolean, sealed: Uint8Array): Buffer {
  const body = sealed.subarray(0, sealed.length - TAG_LENGTH);
  const gcm = createDecipheriv("aes-256-gcm", h.fileKey, chunkNonce(index, final), { authTagLength: TAG_LENGTH });
  gcm.setAAD(h.bytes);
  gcm.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
  try {
    return Buffer.concat([gcm.update(body), gcm.final()]);
  } catch {
    throw final
      ? new BackupIntegrityError("final-chunk", index, `the last chunk (${index}) does not authenticate as the final chunk: the file was cut inside a chunk or altered`)
      : new BackupIntegrityError("chunk", index, `chunk ${index} does not authenticate: altered, reordered or duplicated`);
  }
}
