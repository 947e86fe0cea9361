// One threshold-OPRF evaluation inside the token:
//   KEK   = ECDH1_DERIVE(CKD_NULL)(agreement key, ephemeral)  session CKK_AES, 32 bytes, non-extractable
//   k_i   = UNWRAP(wrapMechanism, KEK, wrapped PKCS#8)          session CKK_EC, sensitive, non-extractable, derive only
//   x1    = x(k_i·B), x2 = x(k_i·(B+G))                        session CKK_GENERIC_SECRET, read out
//   k_i·B = the point with x1 whose sum with K_i has x2
// Every object created is destroyed before the session goes back to the pool.
// x1 and x2 are extractable by design: they are the evaluation output the node
// returns anyway (k_i·B is public to the requester), not secrets at rest.
import pkcs11js from "pkcs11js";
import {
  ProtocolError, addGenerator, decodePoint, parseWrappedShare, recoverEvaluatedPoint, type Point,
} from "../../proto/crypto/index.js";
import { HsmError, toHsmError, type HsmErrorCode } from "./errors.js";
import { P256_EC_PARAMS } from "./keys.js";
import type { Handle } from "./token.js";

type PKCS11 = pkcs11js.PKCS11;
type Template = pkcs11js.Template;
type Mechanism = pkcs11js.Mechanism;
const P = pkcs11js;

/** The PKCS#11 calls an evaluation makes, either blocking or on the libuv pool. */
export interface Calls {
  derive(session: Handle, mech: Mechanism, base: Handle, template: Template): Promise<Handle>;
  unwrap(session: Handle, mech: Mechanism, kek: Handle, wrapped: Buffer, template: Template): Promise<Handle>;
  sign(session: Handle, mech: Mechanism, key: Handle, data: Buffer): Promise<Buffer>;
}

export function asyncCalls(p11: PKCS11): Calls {
  return {
    derive: (s, m, k, t) => p11.C_DeriveKeyAsync(s, m, k, t),
    unwrap: (s, m, k, w, t) => p11.C_UnwrapKeyAsync(s, m, k, w, t),
    sign: (s, m, k, d) => {
      p11.C_SignInit(s, m, k);
      return p11.C_SignAsync(s, d, Buffer.alloc(64));
    },
  };
}

export function syncCalls(p11: PKCS11): Calls {
  return {
    derive: async (s, m, k, t) => p11.C_DeriveKey(s, m, k, t),
    unwrap: async (s, m, k, w, t) => p11.C_UnwrapKey(s, m, k, w, t),
    sign: async (s, m, k, d) => {
      p11.C_SignInit(s, m, k);
      return p11.C_Sign(s, d, Buffer.alloc(64));
    },
  };
}

const NO_USAGE: Template = [
  { type: P.CKA_ENCRYPT, value: false },
  { type: P.CKA_DECRYPT, value: false },
  { type: P.CKA_WRAP, value: false },
  { type: P.CKA_SIGN, value: false },
  { type: P.CKA_VERIFY, value: false },
];

/** The key-encryption key: only ever used to unwrap, never readable. */
export const KEK_TEMPLATE: Template = [
  { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
  { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
  { type: P.CKA_VALUE_LEN, value: 32 },
  { type: P.CKA_TOKEN, value: false },
  { type: P.CKA_PRIVATE, value: true },
  { type: P.CKA_SENSITIVE, value: true },
  { type: P.CKA_EXTRACTABLE, value: false },
  { type: P.CKA_UNWRAP, value: true },
  { type: P.CKA_DERIVE, value: false },
  ...NO_USAGE,
];

/** The unwrapped share. No CKA_EC_PARAMS: SoftHSM takes them from the PKCS#8 and refuses duplicates. */
export const SHARE_TEMPLATE: Template = [
  { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
  { type: P.CKA_KEY_TYPE, value: P.CKK_EC },
  { type: P.CKA_TOKEN, value: false },
  { type: P.CKA_PRIVATE, value: true },
  { type: P.CKA_SENSITIVE, value: true },
  { type: P.CKA_EXTRACTABLE, value: false },
  { type: P.CKA_DERIVE, value: true },
  { type: P.CKA_SIGN, value: false },
  { type: P.CKA_SIGN_RECOVER, value: false },
  { type: P.CKA_DECRYPT, value: false },
  { type: P.CKA_UNWRAP, value: false },
];

/** An evaluation output x-coordinate: public-ish, read out right away. */
export const X_TEMPLATE: Template = [
  { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
  { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET },
  { type: P.CKA_VALUE_LEN, value: 32 },
  { type: P.CKA_TOKEN, value: false },
  { type: P.CKA_PRIVATE, value: true },
  { type: P.CKA_SENSITIVE, value: false },
  { type: P.CKA_EXTRACTABLE, value: true },
  { type: P.CKA_DERIVE, value: false },
  { type: P.CKA_UNWRAP, value: false },
  ...NO_USAGE,
];

export function ecdh(publicPoint: Uint8Array): Mechanism {
  const parameter: pkcs11js.ECDH1 = { type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData: Buffer.from(publicPoint) };
  return { mechanism: P.CKM_ECDH1_DERIVE, parameter };
}

export interface EvaluationInput {
  ephemeral: Uint8Array; // 65 bytes, validated
  wrapped: Buffer;
  B: Point;
  BG: Point; // B + G
  K: Point;
}

/**
 * Parses and validates everything before the token sees any of it (blob v1
 * = 0x01 || ephemeral public key || RFC 5649 wrap, see proto/crypto/wrap.ts).
 */
export function parseEvaluationInput(blob: Uint8Array, blinded: Uint8Array, commitment: Uint8Array): EvaluationInput {
  return fromProtocolErrors(() => {
    const { ephemeralPublicKey, wrapped } = parseWrappedShare(blob);
    const B = decodePoint(blinded, "the blinded element B");
    const K = decodePoint(commitment, "the share commitment K_i");
    return { ephemeral: ephemeralPublicKey, wrapped: Buffer.from(wrapped), B, BG: addGenerator(B), K };
  });
}

/** Runs fn, turning proto/crypto's typed errors into HsmErrors with the same message. */
export function fromProtocolErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    throw new HsmError(PROTOCOL_TO_HSM[err.code] ?? "INVALID_INPUT", err.message);
  }
}

const PROTOCOL_TO_HSM: Partial<Record<ProtocolError["code"], HsmErrorCode>> = {
  INVALID_POINT: "INVALID_POINT",
  IDENTITY_POINT: "INVALID_POINT",
  SHARE_MISMATCH: "SHARE_MISMATCH",
  UNWRAP_FAILED: "WRAPPED_KEY_INVALID",
};

export interface EvaluationContext {
  p11: PKCS11;
  calls: Calls;
  wrapMechanism: number;
  /** The agreement key usable in `session` (the token key or its session copy). */
  agreementKey: Handle;
  /** Called when destroying an object failed (it is freed when its session closes). */
  onDestroyFailure: () => void;
}

/** Runs the evaluation in `session` and returns k_i·B compressed (33 bytes). */
export async function evaluateInSession(ctx: EvaluationContext, session: Handle, input: EvaluationInput): Promise<Uint8Array> {
  const { p11, calls } = ctx;
  const created: Handle[] = [];
  const step = async (what: string, inputCode: HsmErrorCode | undefined, run: () => Promise<Handle>): Promise<Handle> => {
    try {
      const h = await run();
      created.push(h);
      return h;
    } catch (err) {
      throw toHsmError(err, what, inputCode);
    }
  };
  try {
    const kek = await step("deriving the wrapping key", "WRAPPED_KEY_INVALID",
      () => calls.derive(session, ecdh(input.ephemeral), ctx.agreementKey, KEK_TEMPLATE));
    const share = await step("unwrapping the share", "WRAPPED_KEY_INVALID",
      () => calls.unwrap(session, { mechanism: ctx.wrapMechanism }, kek, input.wrapped, SHARE_TEMPLATE));
    assertP256(p11, session, share);
    // B and B+G are valid points (parseEvaluationInput) and this session's token just derived the KEK, so a
    // derive on them that fails for anything but the token (NOT_INPUT) fails for the share: SoftHSM unwraps a
    // scalar 0 or n and refuses it here (CKR_GENERAL_ERROR). 0·G is the identity, which no K_i is: the client's
    // bad share (FAILED_PRECONDITION at the port), not an HSM failure (UNAVAILABLE), test/hsm/evaluate.test.ts.
    const h1 = await step("evaluating on B", "SHARE_MISMATCH",
      () => calls.derive(session, ecdh(input.B.toBytes(false)), share, X_TEMPLATE));
    const h2 = await step("evaluating on B+G", "SHARE_MISMATCH",
      () => calls.derive(session, ecdh(input.BG.toBytes(false)), share, X_TEMPLATE));
    const x1 = readValue(p11, session, h1);
    const x2 = readValue(p11, session, h2);
    return recoverOrMismatch(x1, x2, input.K).toBytes(true);
  } finally {
    for (const h of created.reverse()) {
      try { p11.C_DestroyObject(session, h); } catch { ctx.onDestroyFailure(); }
    }
  }
}

/** The unwrapped PKCS#8 may hold a key on another curve: refuse it as a bad wrap. */
function assertP256(p11: PKCS11, session: Handle, key: Handle): void {
  const params = p11.C_GetAttributeValue(session, key, [{ type: P.CKA_EC_PARAMS }])[0]?.value;
  if (params === undefined || !P256_EC_PARAMS.equals(params)) {
    throw new HsmError("WRAPPED_KEY_INVALID", "the wrapped share is not a P-256 private key");
  }
}

/** Sign recovery; any failure means the share is not the one K_i commits to. */
function recoverOrMismatch(x1: Uint8Array, x2: Uint8Array, K: Point): Point {
  try {
    return recoverEvaluatedPoint(x1, x2, K);
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    throw new HsmError("SHARE_MISMATCH", "the unwrapped share does not match its commitment K_i");
  }
}

function readValue(p11: PKCS11, session: Handle, key: Handle): Uint8Array {
  let v: Buffer | undefined;
  try {
    v = p11.C_GetAttributeValue(session, key, [{ type: P.CKA_VALUE }])[0]?.value;
  } catch (err) {
    throw toHsmError(err, "reading an evaluation output");
  }
  if (v === undefined || v.length !== 32) throw new HsmError("HSM_ERROR", "the token returned a malformed ECDH output");
  return Uint8Array.from(v);
}
