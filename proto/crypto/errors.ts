// Typed errors of the bkv protocol code. Every failure the protocol can detect
// has its own class and a stable `code`, so node and client map them to gRPC
// statuses and messages without parsing text. Messages never carry secrets.

export type ProtocolErrorCode =
  | "INVALID_LENGTH"
  | "INVALID_POINT"
  | "IDENTITY_POINT"
  | "INVALID_SCALAR"
  | "INVALID_ARGUMENT"
  | "INVALID_ENCODING"
  | "UNSUPPORTED_VERSION"
  | "SHARE_MISMATCH"
  | "UNWRAP_FAILED"
  | "WRONG_PASSWORD"
  | "INCONSISTENT_EVALUATIONS"
  | "INSUFFICIENT_EVALUATIONS"
  | "RECORD_MISMATCH";

/** Base class of every error thrown by proto/crypto. */
export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  constructor(code: ProtocolErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An input has the wrong byte length (a point, scalar, key, blob, salt...). */
export class InvalidLengthError extends ProtocolError {
  constructor(what: string, expected: string, got: number) {
    super("INVALID_LENGTH", `${what} must be ${expected} bytes (got ${got})`);
  }
}

/** Bytes of the right length that do not encode a point of P-256. */
export class InvalidPointError extends ProtocolError {
  constructor(what: string, reason = "is not a valid P-256 point") {
    super("INVALID_POINT", `${what} ${reason}`);
  }
}

/** The identity (point at infinity) where a non-identity point is required. */
export class IdentityPointError extends ProtocolError {
  constructor(what: string) {
    super("IDENTITY_POINT", `${what} is the identity point`);
  }
}

/** A scalar outside [1, n-1] (or [0, n-1] where zero is allowed). */
export class InvalidScalarError extends ProtocolError {
  constructor(what: string, reason = "is not a scalar in [1, n-1]") {
    super("INVALID_SCALAR", `${what} ${reason}`);
  }
}

/** A parameter outside its allowed range (threshold, ids, scrypt cost, user id...). */
export class InvalidArgumentError extends ProtocolError {
  constructor(message: string) {
    super("INVALID_ARGUMENT", message);
  }
}

/** A structured byte string (record, blob, ciphertext) that does not parse. */
export class InvalidEncodingError extends ProtocolError {
  constructor(message: string) {
    super("INVALID_ENCODING", message);
  }
}

/** A versioned format with a version this code does not know. */
export class UnsupportedVersionError extends ProtocolError {
  constructor(what: string, version: number) {
    super("UNSUPPORTED_VERSION", `${what} has unsupported version ${version}`);
  }
}

/** An evaluation that does not match the share commitment K_i. */
export class ShareMismatchError extends ProtocolError {
  constructor(message = "the evaluation does not match the share commitment K_i") {
    super("SHARE_MISMATCH", message);
  }
}

/** A wrapped share that does not unwrap (tampered blob or wrong agreement key). */
export class UnwrapError extends ProtocolError {
  constructor(message = "the wrapped share does not unwrap: tampered blob or wrong agreement key") {
    super("UNWRAP_FAILED", message);
  }
}

/**
 * The evaluations combine to an output that does not open the record.
 * `agreeing` is the size of the largest set of answers that lie on one
 * polynomial of degree t-1. `conclusive` is `agreeing > t`: then no single
 * faulty node explains the failure (with up to f faulty answers, require
 * `agreeing >= t + f`). With exactly t answers a faulty node and a wrong
 * password look the same.
 */
export class OprfWrongPasswordError extends ProtocolError {
  readonly conclusive: boolean;
  readonly agreeing: number;
  constructor(agreeing: number, t: number) {
    const conclusive = agreeing > t;
    super(
      "WRONG_PASSWORD",
      conclusive ? "wrong password" : "wrong password, or a faulty node among the answers (ask one more node to tell)",
    );
    this.conclusive = conclusive;
    this.agreeing = agreeing;
  }
}

/** More than t answers that disagree, and no t of them open the record. */
export class OprfInconsistentEvaluationsError extends ProtocolError {
  constructor(message: string) {
    super("INCONSISTENT_EVALUATIONS", message);
  }
}

/** Fewer usable evaluations than the threshold. */
export class InsufficientEvaluationsError extends ProtocolError {
  constructor(have: number, need: number) {
    super("INSUFFICIENT_EVALUATIONS", `need ${need} evaluations from distinct share holders, have ${have}`);
  }
}

/** Data that opened but contradicts the record (e.g. a derived reset key that is not the record's). */
export class RecoveryRecordMismatchError extends ProtocolError {
  constructor(message: string) {
    super("RECORD_MISMATCH", message);
  }
}
