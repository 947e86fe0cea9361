// The backup key ciphertext C (AES-256-GCM, node:crypto).
// C v1 = 0x01 || nonce (12) || ciphertext (32) || tag (16): 61 bytes.
// aad = lp16("bkv-v1/backup-key") || lp16(user id) || u32 version.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { Writer, concat, expectLength } from "./bytes.js";
import { validateUserId, validateVersion } from "./messages.js";
import { UnsupportedVersionError } from "./errors.js";

export const CIPHERTEXT_VERSION = 1;
export const BACKUP_KEY_LENGTH = 32;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
export const CIPHERTEXT_LENGTH = 1 + NONCE_LENGTH + BACKUP_KEY_LENGTH + TAG_LENGTH;
const AAD_TAG = "bkv-v1/backup-key";

export function backupKeyAad(user: string, version: number): Uint8Array {
  validateUserId(user);
  validateVersion(version);
  return new Writer().str(AAD_TAG).str(user).u32(version).bytes();
}

/** C = AES-256-GCM(encKey, backupKey, aad(user, version)) with a random nonce. */
export function encryptBackupKey(encKey: Uint8Array, backupKey: Uint8Array, user: string, version: number): Uint8Array {
  expectLength(encKey, "encryption key", 32);
  expectLength(backupKey, "backup key", BACKUP_KEY_LENGTH);
  const nonce = randomBytes(NONCE_LENGTH);
  const cipher = createCipheriv("aes-256-gcm", encKey, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(backupKeyAad(user, version));
  const body = concat(cipher.update(backupKey), cipher.final());
  return concat(Uint8Array.of(CIPHERTEXT_VERSION), nonce, body, cipher.getAuthTag());
}

/** Checks C's length and version (InvalidLengthError, UnsupportedVersionError). */
export function validateCiphertext(c: Uint8Array): void {
  expectLength(c, "backup key ciphertext", CIPHERTEXT_LENGTH);
  if (c[0] !== CIPHERTEXT_VERSION) throw new UnsupportedVersionError("backup key ciphertext", c[0] ?? 0);
}

/** The backup key, or null when authentication fails (wrong key, or C/aad altered). */
export function decryptBackupKey(encKey: Uint8Array, c: Uint8Array, user: string, version: number): Uint8Array | null {
  expectLength(encKey, "encryption key", 32);
  validateCiphertext(c);
  const nonce = c.subarray(1, 1 + NONCE_LENGTH);
  const body = c.subarray(1 + NONCE_LENGTH, 1 + NONCE_LENGTH + BACKUP_KEY_LENGTH);
  const tag = c.subarray(1 + NONCE_LENGTH + BACKUP_KEY_LENGTH);
  const decipher = createDecipheriv("aes-256-gcm", encKey, nonce, { authTagLength: TAG_LENGTH });
  decipher.setAAD(backupKeyAad(user, version));
  decipher.setAuthTag(tag);
  try {
    return concat(decipher.update(body), decipher.final());
  } catch {
    return null;
  }
}
