// The node's audit log, `<dataDir>/audit.log`: one hash-chained JSON line
// (proto/audit.ts) per applied registration, attempt, lock-out,
// confirmation, deletion and membership change, derived from the APPLIED log
// only, so every node writes the same lines at the same indexes.
//
// Contracts:
// - append-only; record() builds a line in memory; the lines of one
//   event-loop turn (an applied batch) go out in one write(2) when the turn
//   ends, and flush() (before each store commit: the loop commits the vault
//   store, snapshots and compacts those entries only once it resolved)
//   writes what is left and fdatasyncs; writes and fdatasyncs run on libuv's
//   pool, never on the event loop, each after the one before, so lines reach
//   the file in order; a torn last line (a crash inside a write) is cut at
//   open. Lines lost with a crash before their flush belong to entries the
//   store does not hold yet: the loop applies them again after the restart,
//   and they are written then;
// - restart: the chain resumes from the file's last line, and an index at or
//   below the last one written is not written again (the loop re-applies the
//   entries after its snapshot);
// - each store commit records the chain's head (audit-head.ts, flushFor), and
//   is written only once the lines up to it are durable: at open, a file
//   whose chain does not reach the head the store recorded lost lines (cut,
//   or an old copy restored); a `gap` line naming the expected head follows
//   what the file still holds, and the node reports the loss. A torn last
//   line is never one: its write's flush had not resolved, so no commit
//   recorded it;
// - a new file starts with a `segment` line at the node's snapshot index
//   (`from: "bootstrap"` for a new cluster's index 1), and a snapshot
//   installed from the leader starts a new segment (`from: "snapshot"`): the
//   entries it covers were never applied here, so a node that caught up by
//   snapshot holds no lines for them, and its hashes from there on differ from
//   the nodes that applied them (the event fields stay equal).
import { closeSync, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, write, writeSync } from "node:fs";
import { type AuditEvent, type AuditLine, GENESIS_HASH, auditLine, parseAuditLine } from "../../proto/audit.js";
import { ConfChangeType } from "../raft/index.js";
import { writeFully } from "../storage/index.js";
import { type Command, type VaultResult, parseEnvelope, unstamp } from "../vault/index.js";
import type { AppliedEvent } from "./raft-loop.js";
import { type AuditGap, type AuditHead, recordAuditHead } from "./audit-head.js";

export class AuditLog {
  /** Lines recorded and not yet handed to a write, each with its newline. */
  private pending: string[] = [];
  /** Every write and fdatasync so far, in order; a failure fails every later flush. */
  private chain: Promise<void> = Promise.resolve();
  /** Lines written since the last fdatasync was chained. */
  private unsynced = false;
  private writeScheduled = false;

  /**
   * `gap`: the loss found at open, if any: the chain head the vault store
   * recorded (audit-head.ts) which the file's chain did not reach; a `gap`
   * line records it in the chain, and the node reports it (reportAuditGap).
   */
  private constructor(private readonly fd: number, private lastIndex: number, private lastHash: string, readonly gap: AuditGap | null) {}

  /**
   * Opens (or creates) the log; a new file begins a segment at `snapshotIndex` (none while it is 0: a joining node waits for its snapshot).
   * `recorded`: the chain head the vault store's last commit recorded (none: a store from before the record, or one just installed
   * from a snapshot): a file whose chain does not reach it lost lines (a truncated file, an old copy restored), and a `gap` line
   * recording what was expected follows the lines it still holds, in place of a new file's segment line.
   * Reads only the file's tail (the last complete line and a torn rest, and back to the recorded head's index): a restart costs the
   * same at any length of the log.
   */
  static open(file: string, snapshotIndex: number, recorded?: AuditHead): AuditLog {
    const fd = openSync(file, "a+", 0o640);
    try {
      return AuditLog.resume(fd, file, snapshotIndex, recorded);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  private static resume(fd: number, file: string, snapshotIndex: number, recorded: AuditHead | undefined): AuditLog {
    const tail = readTail(fd);
    if (tail.complete < fstatSync(fd).size) ftruncateSync(fd, tail.complete);
    const found = tail.last === undefined ? null : headOf(file, tail.last);
    const gap = recorded === undefined ? null : gapBefore(fd, tail.complete, found, recorded);
    const log = new AuditLog(fd, found?.index ?? -1, found?.hash ?? GENESIS_HASH, gap);
    if (gap !== null) log.append(gapEvent(gap));
    else if (found === null && snapshotIndex > 0) log.append({ index: snapshotIndex, kind: "segment", from: snapshotIndex === 1 ? "bootstrap" : "snapshot" });
    log.writeOpening();
    return log;
  }

  /** The RaftLoop's onOutcome observer. */
  readonly record = (e: AppliedEvent): void => {
    if (e.index <= this.lastIndex) return;
    const event = e.kind === "snapshot" ? { index: e.index, kind: "segment", from: "snapshot" } as const
      : e.kind === "membership" ? membershipEvent(e)
      : commandEvent(e.index, e.data, e.result, e.parsed);
    if (event !== undefined) this.append(event);
    // The installed store already holds the snapshot: its segment line is made durable at once, not at the next commit.
    // A failure fails the next flush too (the loop then stops the node).
    if (e.kind === "snapshot") void this.flush();
  };

  /** The chain's last line (null while the file holds none: a joining node before its snapshot). */
  get head(): AuditHead | null {
    return this.lastIndex < 0 ? null : { index: this.lastIndex, hash: this.lastHash };
  }

  /**
   * A store commit is being sealed (the loop's beforeStoreCommit): puts the
   * chain's head into it (audit-head.ts) and flushes; the commit is written
   * once the flush resolved, so the head it records is durable in the file.
   */
  flushFor(store: { put(key: Uint8Array, value: Uint8Array): void }): Promise<void> {
    const head = this.head;
    if (head !== null) recordAuditHead(store, head);
    return this.flush();
  }

  /**
   * Makes every line recorded before the call durable: writes what is still
   * pending, then fdatasyncs, both off the event loop (libuv's thread pool)
   * and after every write before; the lines recorded meanwhile wait for the
   * next call.
   */
  flush(): Promise<void> {
    this.write();
    if (!this.unsynced) return this.chain;
    this.unsynced = false;
    return this.settled(this.chain.then(() => datasync(this.fd)));
  }

  /** Flushes, then closes the file (closed also when the flush fails, which rejects). */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      closeSync(this.fd);
    }
  }

  /** At open (no flush yet): the segment line of a new file, or a gap line, durable before open returns. */
  private writeOpening(): void {
    if (this.pending.length === 0) return;
    writeSync(this.fd, this.pending.join(""));
    this.pending = [];
    fdatasyncSync(this.fd);
  }

  private append(event: AuditEvent): void {
    const { text, hash } = auditLine(event, this.lastHash);
    this.pending.push(`${text}\n`);
    this.lastIndex = event.index;
    this.lastHash = hash;
    if (this.writeScheduled) return;
    this.writeScheduled = true;
    setImmediate(this.writeTurn);
  }

  /** The lines of one event-loop turn (an applied batch) go out in one write, as soon as the turn ends. */
  private readonly writeTurn = (): void => {
    this.writeScheduled = false;
    this.write();
  };

  /** Hands the pending lines to one write on the pool, after the writes before. */
  private write(): void {
    if (this.pending.length === 0) return;
    const bytes = Buffer.from(this.pending.join(""), "utf8");
    this.pending = [];
    this.unsynced = true;
    this.settled(this.chain.then(() => writeAll(this.fd, bytes)));
  }

  /** `p` as the chain's new end; its failure is reported by the flushes after it (handled here so that it is not an unhandled rejection meanwhile). */
  private settled(p: Promise<void>): Promise<void> {
    this.chain = p;
    p.catch(() => undefined);
    return p;
  }
}

/** Writes all of `bytes` at the end of the file open at `fd` (append mode), off the event loop. */
function writeAll(fd: number, bytes: Buffer): Promise<void> {
  return writeFully(bytes, (offset, length) => new Promise<number>((resolve, reject) => write(fd, bytes, offset, length, null, (err, n) => (err === null ? resolve(n) : reject(err)))));
}

function datasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err === null ? resolve() : reject(err))));
}

/** Bytes read from the end of the file at a time while looking for its last complete line. */
const TAIL_BLOCK = 64 * 1024;

interface Tail {
  /** Bytes up to and including the last newline (0: no complete line). */
  readonly complete: number;
  /** The last complete line, without its newline. */
  readonly last: string | undefined;
}

/** The file's last complete line (and where the complete lines end): read backwards from its end, in blocks. */
function readTail(fd: number): Tail {
  const complete = completeLength(fd);
  const last = linesBackward(fd, complete).next();
  return { complete, last: last.done === true ? undefined : last.value };
}

/** Bytes up to and including the last newline of the file open at `fd` (0: none). */
function completeLength(fd: number): number {
  for (let start = fstatSync(fd).size; start > 0;) {
    const from = Math.max(0, start - TAIL_BLOCK);
    const block = readBlock(fd, from, start);
    const nl = block.lastIndexOf(0x0a);
    if (nl >= 0) return from + nl + 1;
    start = from;
  }
  return 0;
}

/** The non-empty lines of the file open at `fd` before byte `end` (just after a newline, or 0), the last first: read backwards, in blocks. */
function* linesBackward(fd: number, end: number): Generator<string> {
  let buf = Buffer.alloc(0); // bytes [start, the end of the next line's newline + 1)
  for (let start = end; ;) {
    if (buf.length > 0) {
      const prev = buf.length >= 2 ? buf.lastIndexOf(0x0a, buf.length - 2) : -1;
      if (prev >= 0 || start === 0) { // the line's start is in buf
        const line = buf.subarray(prev + 1, buf.length - 1);
        buf = buf.subarray(0, prev + 1);
        if (line.length > 0) yield line.toString("utf8");
        continue;
      }
    } else if (start === 0) {
      return;
    }
    const from = Math.max(0, start - TAIL_BLOCK);
    buf = Buffer.concat([readBlock(fd, from, start), buf]);
    start = from;
  }
}

function readBlock(fd: number, from: number, to: number): Buffer {
  const block = Buffer.alloc(to - from);
  readSync(fd, block, 0, block.length, from);
  return block;
}

/** The (index, hash) of the file's last line, which must verify. */
function headOf(file: string, last: string): AuditHead {
  try {
    const line = parseAuditLine(last);
    return { index: line.index, hash: line.hash };
  } catch (err) {
    throw new Error(`${file}: the last line does not verify (${(err as Error).message}): check the file with \`bkv admin audit verify\``);
  }
}

/**
 * The loss, if the file's chain does not reach `expected` (the head the
 * store recorded): the file must hold a line at its index with its hash, and
 * may go on past it (lines flushed for a store commit a crash kept from
 * being written), or hold a gap line that already records this loss (the
 * node stopped again before a commit recorded a newer head). Reads back from
 * the end no further than that index.
 */
function gapBefore(fd: number, end: number, found: AuditHead | null, expected: AuditHead): AuditGap | null {
  if (found === null || found.index < expected.index) return { expected, found, reason: "behind" };
  for (const text of linesBackward(fd, end)) {
    let line: AuditLine;
    try {
      line = parseAuditLine(text);
    } catch {
      continue; // not the line sought; `bkv admin audit verify` names it
    }
    if (line.index < expected.index) break;
    if (line.index === expected.index && line.hash === expected.hash) return null;
    if (line.kind === "gap" && line.expectedIndex === expected.index && line.expectedHash === expected.hash) return null;
  }
  return { expected, found, reason: "differs" };
}

/** The gap line: after what the file held, at the expected index or the file's last one, whichever is later. */
function gapEvent(gap: AuditGap): AuditEvent {
  const index = Math.max(gap.found?.index ?? -1, gap.expected.index);
  return { index, kind: "gap", reason: gap.reason, expectedIndex: gap.expected.index, expectedHash: gap.expected.hash };
}

/**
 * The audit event of an applied membership entry: outcome "ok", or
 * "ignored" with the reason the loop gave (then without `change` and `node`
 * when the entry does not decode).
 */
export function membershipEvent(e: Extract<AppliedEvent, { kind: "membership" }>): AuditEvent {
  const change = e.change === null ? {} : { change: ConfChangeType[e.change.type], node: e.change.nodeId };
  return { index: e.index, kind: "membership", ...change, outcome: e.ignored === undefined ? "ok" : "ignored", reason: e.ignored };
}

/**
 * The audit event of an applied vault command; undefined for a leader's
 * no-op and node announcements. `parsed`: what apply parsed from `data`
 * (spares parsing and validating it again, a curve point included).
 */
export function commandEvent(index: number, data: Uint8Array, result: VaultResult, parsed?: { readonly requestId: Uint8Array | null; readonly command: Command | null }): AuditEvent | undefined {
  if (data.length === 0) return undefined;
  const env = parsed ?? parseEnvelope(unstamp(data).payload);
  const c = env.command;
  const outcome = result.ok ? "ok" : result.reason;
  const attemptsRemaining = "attemptsRemaining" in result ? result.attemptsRemaining : undefined;
  const base = { index, requestId: env.requestId === null ? undefined : Buffer.from(env.requestId).toString("hex"), outcome, attemptsRemaining };
  if (c === null) return { ...base, kind: "invalid" };
  switch (c.kind) {
    case "announce":
      return undefined;
    case "register":
      return { ...base, kind: "register", user: c.record.user, version: c.record.version };
    case "begin":
      return { ...base, kind: outcome === "GUESS_LIMIT_REACHED" ? "lockout" : "attempt", user: c.user };
    case "confirm":
      return { ...base, kind: "confirm", user: c.user };
    case "delete":
      return { ...base, kind: "delete", user: c.user };
    case "issuers":
      return { ...base, kind: "issuers" };
    case "bind-shares":
      return { ...base, kind: "bind-shares" };
  }
}
