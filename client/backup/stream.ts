// Streaming encryption and decryption of backup files (format.ts), in
// constant memory (one chunk plus the stream buffers). The file functions
// write to a temporary name in the output's directory and rename it into
// place only after the whole input was processed (for decryption: after
// every chunk, and the final one, authenticated). On any failure the
// temporary file is removed, so no partial output is ever left behind.
import { createReadStream, createWriteStream } from "node:fs";
import { open, rename, stat, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ClientError } from "../sdk/errors.js";
import { ioStep } from "../sdk/io-step.js";
import { BackupFormatError, BackupIntegrityError } from "./errors.js";
import { DEFAULT_CHUNK_SIZE, type FileHeader, HEADER_LENGTH, TAG_LENGTH, newHeader, openChunk, openHeader, sealChunk } from "./format.js";

/** A FIFO of byte buffers that hands out exact-length slices. */
class ByteQueue {
  private parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  take(n: number): Buffer {
    const all = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.parts = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return out;
  }
}

/** Plaintext in, backup file out. */
export class EncryptStream extends Transform {
  private readonly header: FileHeader;
  private readonly queue = new ByteQueue();
  private index = 0;

  constructor(backupKey: Uint8Array, chunkSize = DEFAULT_CHUNK_SIZE) {
    super();
    this.header = newHeader(backupKey, chunkSize);
    this.push(Buffer.from(this.header.bytes));
  }

  override _transform(data: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.queue.push(data);
    // A full chunk is never the final one: the final chunk holds < chunkSize bytes.
    while (this.queue.length >= this.header.chunkSize) {
      this.push(sealChunk(this.header, this.index++, false, this.queue.take(this.header.chunkSize)));
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    this.push(sealChunk(this.header, this.index++, true, this.queue.take(this.queue.length)));
    done();
  }
}

/**
 * Backup file in, plaintext out. Each chunk is released only once it
 * authenticated, but completeness is known only when the stream ends:
 * consumers must discard the output if the stream errors (decryptFile does).
 */
export class DecryptStream extends Transform {
  private header: FileHeader | undefined;
  private readonly queue = new ByteQueue();
  private index = 0;

  constructor(private readonly backupKey: Uint8Array) {
    super();
  }

  override _transform(data: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.queue.push(data);
    try {
      if (this.header === undefined) {
        if (this.queue.length < HEADER_LENGTH) return done();
        this.header = openHeader(this.backupKey, this.queue.take(HEADER_LENGTH));
      }
      const sealedChunk = this.header.chunkSize + TAG_LENGTH;
      while (this.queue.length >= sealedChunk) {
        this.push(openChunk(this.header, this.index++, false, this.queue.take(sealedChunk)));
      }
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      if (this.header === undefined) throw new BackupFormatError(`too short to be a bkv backup file (${this.queue.length} bytes)`);
      const rest = this.queue.length;
      if (rest === 0) throw new BackupIntegrityError("truncated", this.index, `the file ends after chunk ${this.index - 1} without its final chunk: truncated`);
      if (rest < TAG_LENGTH) throw new BackupIntegrityError("truncated", this.index, `the file ends inside chunk ${this.index}: truncated`);
      this.push(openChunk(this.header, this.index++, true, this.queue.take(rest)));
      done();
    } catch (err) {
      done(err as Error);
    }
  }
}

export interface FileOptions {
  /** Called as input is consumed: bytes read so far, and the input's size. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Replace an existing output file (default: refuse). */
  readonly overwrite?: boolean;
  /** Plaintext bytes per chunk when encrypting (default 64 KiB). */
  readonly chunkSize?: number;
}

/** Encrypts `inPath` to `outPath` (atomically: temp file, then rename). */
export function encryptFile(backupKey: Uint8Array, inPath: string, outPath: string, opts: FileOptions = {}): Promise<void> {
  return transformFile(() => new EncryptStream(backupKey, opts.chunkSize), inPath, outPath, opts);
}

/** Decrypts `inPath` to `outPath`; the output appears only if the whole file authenticated. */
export function decryptFile(backupKey: Uint8Array, inPath: string, outPath: string, opts: FileOptions = {}): Promise<void> {
  return transformFile(() => new DecryptStream(backupKey), inPath, outPath, opts);
}

async function transformFile(make: () => Transform, inPath: string, outPath: string, opts: FileOptions): Promise<void> {
  if (resolve(inPath) === resolve(outPath)) throw new ClientError("IO", "input and output are the same file");
  const total = (await ioStep(`cannot read ${inPath}`, () => stat(inPath))).size;
  if (!opts.overwrite && (await exists(outPath))) throw new ClientError("IO", `${outPath} exists (pass --force to replace it)`);
  const transform = make();
  const temp = join(dirname(outPath), `.${basename(outPath)}.bkv-tmp-${randomBytes(6).toString("hex")}`);
  try {
    await pipeline(createReadStream(inPath), progress(total, opts.onProgress), transform, createWriteStream(temp, { flags: "wx", mode: 0o600 }));
    await syncFile(temp);
    await rename(temp, outPath);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    if (err instanceof ClientError) throw err;
    throw new ClientError("IO", `${(err as Error).message}`, { cause: err });
  }
}

function progress(total: number, onProgress?: (done: number, total: number) => void): Transform {
  let done = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      onProgress?.(done, total);
      cb(null, chunk);
    },
  });
}

async function syncFile(path: string): Promise<void> {
  const fh = await open(path, "r+");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}
