// Password hardening (scrypt, parameters stored in the record) and the HKDF
// derivations from the OPRF output y: the backup-key encryption key and the
// deterministic reset key pair.
import { scrypt, scryptSync } from "node:crypto";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { mapHashToField } from "@noble/curves/abstract/modular.js";
import { bytesToBigInt, expectLength, utf8 } from "./bytes.js";
import { G, ORDER, encodePoint } from "./group.js";
import { InvalidArgumentError } from "./errors.js";

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** About 100-300 ms and 32 MiB on the reference machine (docs/protocol.md). */
export const DEFAULT_SCRYPT: ScryptParams = { N: 1 << 15, r: 8, p: 1 };
export const SALT_LENGTH = 16;
export const HARDENED_LENGTH = 32;
export const OPRF_OUTPUT_LENGTH = 32;
export const ENC_KEY_LENGTH = 32;

/** Accepted range: N in [2^10, 2^20] a power of two, r in [1, 32], p in [1, 16], 128·N·r·p <= 1 GiB. */
export const SCRYPT_LIMITS = { minLog2N: 10, maxLog2N: 20, maxR: 32, maxP: 16, maxBytes: 1 << 30 } as const;

export const LABEL_ENC_KEY = "bkv-v1/enc-key";
export const LABEL_RESET_KEY = "bkv-v1/reset-key";

/** Throws InvalidArgumentError for parameters outside SCRYPT_LIMITS (a record could carry hostile ones). */
export function validateScryptParams(params: ScryptParams): void {
  const { N, r, p } = params;
  const log2N = Math.log2(N);
  if (!Number.isInteger(log2N) || log2N < SCRYPT_LIMITS.minLog2N || log2N > SCRYPT_LIMITS.maxLog2N) {
    throw new InvalidArgumentError(`scrypt N=${String(N)} must be a power of two in [2^${SCRYPT_LIMITS.minLog2N}, 2^${SCRYPT_LIMITS.maxLog2N}]`);
  }
  if (!Number.isSafeInteger(r) || r < 1 || r > SCRYPT_LIMITS.maxR) throw new InvalidArgumentError(`scrypt r=${String(r)} must be in [1, ${SCRYPT_LIMITS.maxR}]`);
  if (!Number.isSafeInteger(p) || p < 1 || p > SCRYPT_LIMITS.maxP) throw new InvalidArgumentError(`scrypt p=${String(p)} must be in [1, ${SCRYPT_LIMITS.maxP}]`);
  if (128 * N * r * p > SCRYPT_LIMITS.maxBytes) throw new InvalidArgumentError("scrypt parameters need more than 1 GiB");
}

/** The password as bytes: Unicode NFC, then UTF-8. Empty passwords are refused. */
export function passwordBytes(password: string): Uint8Array {
  if (typeof password !== "string" || password.length === 0) throw new InvalidArgumentError("password must be a non-empty string");
  return utf8(password.normalize("NFC"));
}

function scryptOptions(params: ScryptParams) {
  validateScryptParams(params);
  return { N: params.N, r: params.r, p: params.p, maxmem: 2 * 128 * params.N * params.r + (1 << 20) };
}

/** pwh = scrypt(NFC(password), salt, N, r, p, 32 bytes). Blocks the thread; see hardenPasswordAsync. */
export function hardenPassword(password: string, salt: Uint8Array, params: ScryptParams): Uint8Array {
  expectLength(salt, "salt", SALT_LENGTH);
  const opts = scryptOptions(params);
  return new Uint8Array(scryptSync(passwordBytes(password), salt, HARDENED_LENGTH, opts));
}

/** hardenPassword on the libuv thread pool. */
export function hardenPasswordAsync(password: string, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  expectLength(salt, "salt", SALT_LENGTH);
  const opts = scryptOptions(params);
  const pw = passwordBytes(password);
  return new Promise((resolve, reject) => {
    scrypt(pw, salt, HARDENED_LENGTH, opts, (err, key) => (err ? reject(err) : resolve(new Uint8Array(key))));
  });
}

export interface DerivedKeys {
  /** AES-256-GCM key of the backup key ciphertext C. */
  readonly encKey: Uint8Array;
  /** Reset private scalar in [1, n-1]. */
  readonly resetPrivateKey: bigint;
  /** Its public key, compressed SEC1 (33 bytes). */
  readonly resetPublicKey: Uint8Array;
}

/**
 * From the OPRF output y (32 bytes), with HKDF-SHA256 (empty salt):
 * enc_key = HKDF(y, info "bkv-v1/enc-key", 32);
 * reset scalar = mapHashToField(HKDF(y, info "bkv-v1/reset-key", 48), n), in [1, n-1].
 */
export function deriveKeys(y: Uint8Array): DerivedKeys {
  expectLength(y, "OPRF output", OPRF_OUTPUT_LENGTH);
  const encKey = hkdf(sha256, y, undefined, utf8(LABEL_ENC_KEY), ENC_KEY_LENGTH);
  const resetPrivateKey = bytesToBigInt(mapHashToField(hkdf(sha256, y, undefined, utf8(LABEL_RESET_KEY), 48), ORDER));
  return { encKey, resetPrivateKey, resetPublicKey: encodePoint(G.multiply(resetPrivateKey), true) };
}
