// Typed errors of node/storage. Every corruption error names the file and the
// byte offset so that an operator can inspect it (e.g. with `xxd -s`).

/** Base class: the on-disk state cannot be used as is; the node must not start. */
export class StorageError extends Error {
  override name = "StorageError";
}

/** A damaged WAL record that is not a torn tail (valid data follows it, or it is not in the last segment). */
export class WalCorruptError extends StorageError {
  override name = "WalCorruptError";
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`WAL corrupt: ${file} at byte offset ${offset}: ${reason}`);
  }
}

/** The WAL and the snapshots disagree (missing segment, index gap, snapshot a WAL marker needs is gone). */
export class WalInconsistentError extends StorageError {
  override name = "WalInconsistentError";
}

/** A snapshot file failed its checksum or could not be decoded. */
export class SnapshotCorruptError extends StorageError {
  override name = "SnapshotCorruptError";
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`snapshot corrupt: ${file}: ${reason}`);
  }
}

/** An earlier write or fsync failed: the WAL state is unknown, so the storage refuses further use. */
export class StorageFailedError extends StorageError {
  override name = "StorageFailedError";
}

/** A value cannot be encoded (index out of range, record too large, ...). */
export class EncodeError extends StorageError {
  override name = "EncodeError";
}

/** A save() that would break the log's shape (gap, non-contiguous entries): refused before anything is written. */
export class InvalidSaveError extends StorageError {
  override name = "InvalidSaveError";
}
