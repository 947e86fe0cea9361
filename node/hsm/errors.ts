// Typed HSM errors. Every failure that leaves node/hsm is an HsmError whose
// `code` names the cause. Messages name the operation and the PKCS#11 return
// value, never a PIN, a key, a share or any other input bytes.

export type HsmErrorCode =
  | "CONFIG_INVALID" // bad or missing configuration (module path, PIN source, ...)
  | "MODULE_LOAD_FAILED" // the PKCS#11 module could not be loaded or initialized
  | "TOKEN_NOT_FOUND" // no initialized token carries the configured label
  | "TOKEN_NOT_PRESENT" // the token went away (CKR_TOKEN_NOT_PRESENT, CKR_DEVICE_REMOVED)
  | "PIN_INCORRECT"
  | "PIN_LOCKED"
  | "NOT_LOGGED_IN"
  | "KEY_INVALID" // a node key on the token does not have the attributes bkv requires
  | "INVALID_INPUT" // wrong length or format of an argument
  | "INVALID_POINT" // not a P-256 point, or the identity
  | "WRAPPED_KEY_INVALID" // the wrap blob does not unwrap with this node's agreement key
  | "SHARE_MISMATCH" // the unwrapped share does not match its commitment K_i
  | "ATTRIBUTE_SENSITIVE" // a secret attribute was asked for and refused
  | "MECHANISM_INVALID" // the module does not offer a configured mechanism
  | "DEVICE_ERROR" // the token reports a device or memory failure
  | "CLOSED" // the HSM handle was closed
  | "HSM_ERROR"; // any other PKCS#11 failure (see `ckr`)

export class HsmError extends Error {
  override readonly name = "HsmError";
  readonly code: HsmErrorCode;
  /** The PKCS#11 return value name (e.g. "CKR_PIN_INCORRECT") when one caused this. */
  readonly ckr: string | undefined;

  constructor(code: HsmErrorCode, message: string, ckr?: string) {
    super(message);
    this.code = code;
    this.ckr = ckr;
  }
}

// CKR names (pkcs11js puts them in Pkcs11Error.message) mapped to codes.
const CKR_TO_CODE: Readonly<Record<string, HsmErrorCode>> = {
  CKR_PIN_INCORRECT: "PIN_INCORRECT",
  CKR_PIN_INVALID: "PIN_INCORRECT",
  CKR_PIN_LEN_RANGE: "PIN_INCORRECT",
  CKR_PIN_LOCKED: "PIN_LOCKED",
  CKR_USER_PIN_NOT_INITIALIZED: "PIN_LOCKED",
  CKR_USER_NOT_LOGGED_IN: "NOT_LOGGED_IN",
  CKR_TOKEN_NOT_PRESENT: "TOKEN_NOT_PRESENT",
  CKR_TOKEN_NOT_RECOGNIZED: "TOKEN_NOT_PRESENT",
  CKR_DEVICE_REMOVED: "TOKEN_NOT_PRESENT",
  CKR_DEVICE_ERROR: "DEVICE_ERROR",
  CKR_DEVICE_MEMORY: "DEVICE_ERROR",
  CKR_HOST_MEMORY: "DEVICE_ERROR",
  CKR_WRAPPED_KEY_INVALID: "WRAPPED_KEY_INVALID",
  CKR_WRAPPED_KEY_LEN_RANGE: "WRAPPED_KEY_INVALID",
  CKR_ENCRYPTED_DATA_INVALID: "WRAPPED_KEY_INVALID",
  CKR_ATTRIBUTE_SENSITIVE: "ATTRIBUTE_SENSITIVE",
  CKR_MECHANISM_INVALID: "MECHANISM_INVALID",
  CKR_CRYPTOKI_NOT_INITIALIZED: "CLOSED",
};

/** Return values that mean "the token, session or configuration is wrong", never "bad input". */
const NOT_INPUT: ReadonlySet<HsmErrorCode> = new Set<HsmErrorCode>([
  "TOKEN_NOT_PRESENT", "DEVICE_ERROR", "NOT_LOGGED_IN", "CLOSED", "PIN_LOCKED", "MECHANISM_INVALID",
]);

/** The CKR name of a pkcs11js error, or undefined for anything else. */
export function ckrName(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const m = /^(CKR_[A-Z0-9_]+)/.exec(err.message);
  return m?.[1];
}

/**
 * Converts whatever a PKCS#11 call threw into an HsmError for `operation`.
 * `inputCode`, when given, is used for any failure that is not a token,
 * session or configuration failure: SoftHSM reports malformed inputs with vague codes
 * (CKR_GENERAL_ERROR, CKR_FUNCTION_FAILED), so the caller that knows which
 * input the step consumed names the cause.
 */
export function toHsmError(err: unknown, operation: string, inputCode?: HsmErrorCode): HsmError {
  if (err instanceof HsmError) return err;
  const ckr = ckrName(err);
  const mapped = ckr === undefined ? undefined : CKR_TO_CODE[ckr];
  let code: HsmErrorCode = mapped ?? "HSM_ERROR";
  if (inputCode !== undefined && !NOT_INPUT.has(code)) code = inputCode;
  const cause = ckr ?? (err instanceof Error ? err.name : "unknown failure");
  return new HsmError(code, `${operation} failed: ${describe(code)} (${cause})`, ckr);
}

function describe(code: HsmErrorCode): string {
  switch (code) {
    case "PIN_INCORRECT": return "the token refused the PIN";
    case "PIN_LOCKED": return "the token's user PIN is locked or not initialized";
    case "NOT_LOGGED_IN": return "the session is not logged in";
    case "TOKEN_NOT_PRESENT": return "the token is not present";
    case "DEVICE_ERROR": return "the token reported a device error";
    case "WRAPPED_KEY_INVALID": return "the wrapped share does not unwrap with this node's agreement key";
    case "SHARE_MISMATCH": return "the unwrapped share is not a P-256 scalar matching its commitment K_i";
    case "ATTRIBUTE_SENSITIVE": return "the attribute is sensitive and cannot be read";
    case "MECHANISM_INVALID": return "the module does not support the mechanism";
    case "CLOSED": return "the PKCS#11 module is not initialized";
    case "INVALID_POINT": return "the point was refused by the token";
    default: return "the token returned an error";
  }
}
