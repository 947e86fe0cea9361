// Bounds on one snapshot download (docs/storage.md, "Snapshot transfer";
// docs/threat-model.md, "Closed: a snapshot download without bounds"). A
// follower downloads a snapshot's store state from whichever member sent it
// the MsgSnap, and a member may be rogue (a valid mTLS identity) or broken:
// it could stream without end and fill this node's disk, or trickle or stall
// and hold the stager's one download for as long as it likes.
//
// boundedChunks passes a download's chunks through and ends it, aborting
// its AbortController with a DownloadAbortedError (which cancels the
// FetchSnapshot call; the stager then deletes the staging store), when:
//  - idle: the follower waited `idleTimeoutMs` for the next chunk. The
//    sender's writer gives up on a follower that reads nothing after the
//    same silence (chunk-writer.ts STALL_MS): either end declares a transfer
//    dead after one minute without a byte moving.
//  - slow: the sender delivers less than `minBytesPerSecond` while the
//    follower waits for it. Waiting draws on an allowance, ms for ms; each
//    byte received pays 1000 / minBytesPerSecond ms back, up to one idle
//    limit (Pace). Only waiting is charged: the follower's own parsing,
//    hashing and commits are not the sender's doing. Without this a sender
//    that sends one byte a minute is never idle.
//  - size: more than `maxBytes` arrived.
//  - disk: the staging store's file system has less than `diskReserveBytes`
//    available, read before the first chunk and after every DISK_CHECK_BYTES
//    received, so a download never takes the space the WAL, the current store
//    and the evaluation ledger need (whatever a pair costs on disk).
// So one download holds the stager for at most about maxBytes /
// minBytesPerSecond (plus an idle limit), and the disk never below the
// reserve plus what lands between two checks.
import { statfs } from "node:fs/promises";
import { STALL_MS } from "../transport/index.js";

export interface DownloadLimits {
  /** The longest the follower waits for the sender's next chunk, ms; also the most waiting credit it banks. */
  readonly idleTimeoutMs: number;
  /** The slowest the sender may deliver while the follower waits for it, bytes a second (0: no floor, only the idle limit). */
  readonly minBytesPerSecond: number;
  /** The most bytes one download may receive (the vault's snapshot stream, format 4). */
  readonly maxBytes: number;
  /** The space the staging store's file system keeps available: below it a download is ended. */
  readonly diskReserveBytes: number;
}

/**
 * maxBytes: ~9× the measured 1M-record state (a 1.8 GiB stream, docs/benchmarks.md), the scale bkv is
 * built and measured for; a larger state needs it raised. minBytesPerSecond: a tenth of the slowest
 * honest transfer measured (~10 MiB/s, limited by the importer, whose time is not charged). The reserve
 * is minutes of WAL at the measured peak write rates, and several times what lands between two checks.
 */
export const DEFAULT_DOWNLOAD_LIMITS: DownloadLimits = {
  idleTimeoutMs: STALL_MS,
  minBytesPerSecond: 1024 * 1024,
  maxBytes: 16 * 1024 ** 3,
  diskReserveBytes: 256 * 1024 * 1024,
};

/** Bytes received between two reads of the available disk space. */
export const DISK_CHECK_BYTES = 16 * 1024 * 1024;

/** Why a download was ended before its last chunk: a bound above, a newer term's snapshot message, or the node stopping. */
export type AbortReason = "idle" | "slow" | "size" | "disk" | "preempted" | "stopped";

export class DownloadAbortedError extends Error {
  override readonly name = "DownloadAbortedError";
  constructor(readonly reason: AbortReason, message: string) {
    super(message);
  }
}

export interface DownloadBounds {
  readonly limits: DownloadLimits;
  /** The download's controller: aborted (with the DownloadAbortedError) when a bound is passed. */
  readonly abort: AbortController;
  /** Bytes available to this node on the staging store's file system. */
  freeBytes(): Promise<number>;
}

/** Bytes available to an unprivileged writer on the file system holding `dir` (statfs). */
export async function availableBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/**
 * Yields the chunks of `chunks` while the download stays within `b.limits`
 * (the file comment); otherwise aborts `b.abort` and throws the
 * DownloadAbortedError. A download aborted from outside (preempted,
 * stopped) throws the abort's reason at once, also while it waits. The
 * source is told to return when this ends, never awaited: a source stuck
 * in a wait must not hold the stager.
 */
export async function* boundedChunks(chunks: AsyncIterable<Uint8Array>, b: DownloadBounds): AsyncGenerator<Uint8Array> {
  const { limits, abort } = b;
  const source = chunks[Symbol.asyncIterator]();
  const pace = new Pace(limits);
  let received = 0;
  let diskCheckAt = 0;
  try {
    for (;;) {
      if (received >= diskCheckAt) {
        await checkDisk(b, received);
        diskCheckAt = received + DISK_CHECK_BYTES;
      }
      const allowance = pace.allowance;
      const t0 = performance.now();
      const next = await within(source.next(), allowance, abort.signal, () => cut(abort, pace.exhausted(allowance, received)));
      if (next.done === true) return;
      received += next.value.byteLength;
      pace.paid(performance.now() - t0, next.value.byteLength);
      if (received > limits.maxBytes) {
        throw cut(abort, new DownloadAbortedError("size", `the sender sent over ${limits.maxBytes} bytes (snapshotDownload.maxBytes)`));
      }
      yield next.value;
    }
  } finally {
    source.return?.().catch(() => undefined);
  }
}

/**
 * The waiting allowance of a download, ms: starts at one idle limit; a wait
 * draws on it; each byte received pays back 1000 / minBytesPerSecond ms, up
 * to one idle limit again. A sender at or above the floor never runs it
 * down; one below it does, in idleTimeoutMs / (1 - rate / floor) of waiting.
 */
class Pace {
  allowance: number;
  private readonly msPerByte: number;

  constructor(private readonly limits: DownloadLimits) {
    this.allowance = limits.idleTimeoutMs;
    this.msPerByte = limits.minBytesPerSecond === 0 ? Infinity : 1000 / limits.minBytesPerSecond;
  }

  /** A wait of `waitedMs` ended with a chunk of `bytes`. */
  paid(waitedMs: number, bytes: number): void {
    const credit = bytes === 0 ? 0 : bytes * this.msPerByte;
    this.allowance = Math.min(this.limits.idleTimeoutMs, this.allowance - waitedMs + credit);
  }

  /** The error of a wait that used up `allowance`: idle when that was a whole idle limit, else slow. */
  exhausted(allowance: number, received: number): DownloadAbortedError {
    const { idleTimeoutMs, minBytesPerSecond } = this.limits;
    if (allowance >= idleTimeoutMs) {
      return new DownloadAbortedError("idle", `no chunk for ${idleTimeoutMs} ms after ${received} bytes (snapshotDownload.idleTimeoutMs)`);
    }
    return new DownloadAbortedError("slow", `the sender delivered under ${minBytesPerSecond} bytes a second while this node waited, ${received} bytes in all (snapshotDownload.minBytesPerSecond)`);
  }
}

async function checkDisk(b: DownloadBounds, received: number): Promise<void> {
  const free = await b.freeBytes();
  const reserve = b.limits.diskReserveBytes;
  if (free < reserve) {
    throw cut(b.abort, new DownloadAbortedError("disk", `${free} bytes available on the staging store's file system after ${received} received, under the reserve of ${reserve} (snapshotDownload.diskReserveBytes)`));
  }
}

/** Aborts the download with `err` (cancelling its call) and returns `err` to throw. */
function cut(abort: AbortController, err: DownloadAbortedError): DownloadAbortedError {
  abort.abort(err);
  return err;
}

/** `next`'s value, unless `ms` pass first (throws `late()`) or `signal` aborts (throws its reason). */
function within<T>(next: Promise<T>, ms: number, signal: AbortSignal, late: () => Error): Promise<T> {
  if (signal.aborted) {
    next.catch(() => undefined);
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const settle = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", aborted);
    };
    const aborted = (): void => { settle(); reject(signal.reason as Error); };
    const timer = setTimeout(() => { settle(); reject(late()); }, Math.max(0, ms));
    signal.addEventListener("abort", aborted, { once: true });
    next.then((v) => { settle(); resolve(v); }, (err: unknown) => { settle(); reject(err as Error); });
  });
}
