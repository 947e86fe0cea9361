// Errors of the backup-file format. None of them is ever raised after an
// output file became visible: decryption writes to a temporary name first.
import { ClientError } from "../sdk/errors.js";

/** Not a bkv backup, or a version / suite / parameter this code does not know. */
export class BackupFormatError extends ClientError {
  constructor(message: string) {
    super("BACKUP_FORMAT", message);
  }
}

/** The key is malformed or does not open the file (checked with the header's key check). */
export class BackupKeyError extends ClientError {
  constructor(message: string) {
    super("BACKUP_WRONG_KEY", message);
  }
}

/** Where authentication failed. */
export type IntegrityPart = "header" | "chunk" | "final-chunk" | "truncated";

/** The file was altered, reordered, duplicated or truncated. */
export class BackupIntegrityError extends ClientError {
  readonly part: IntegrityPart;
  /** The chunk index concerned, when one is. */
  readonly chunkIndex: number | undefined;
  constructor(part: IntegrityPart, chunkIndex: number | undefined, message: string) {
    super("BACKUP_INTEGRITY", message);
    this.part = part;
    this.chunkIndex = chunkIndex;
  }
}
