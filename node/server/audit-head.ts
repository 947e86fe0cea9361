// The audit log's chain head as the vault store remembers it: the (index,
// hash) of the last line recorded when a store commit was sealed, kept in a
// node-local pair (node/vault/keys.ts LOCAL_PREFIX: never replicated, never
// in the digest or a snapshot) and written by that same commit. The commit is
// written only once the audit log's flush resolved (audit.ts), so the file
// holds at least the lines up to the head the store holds; at open, a file
// whose chain does not reach that head lost its tail (AuditLog.open).
//
// Value: u8 format (1) || u64 index || hash (32 bytes).
import { localKey } from "../vault/index.js";
import type { Logger } from "./log.js";

/** A line of the chain: its Raft index and its hash (hex). */
export interface AuditHead {
  readonly index: number;
  readonly hash: string;
}

/** The loss AuditLog.open found: the store's head, which the file's chain did not reach. */
export interface AuditGap {
  /** The head the store recorded. */
  readonly expected: AuditHead;
  /** The file's last line at open (null: it held none). */
  readonly found: AuditHead | null;
  /** "behind": the file's chain ends before the expected index; "differs": it holds another line there. */
  readonly reason: "behind" | "differs";
}

/**
 * Says so loudly: counts it (`gaps`, the metric) and logs an error naming
 * the expected and the found head (line indexes and hashes: nothing secret).
 */
export function reportAuditGap(gap: AuditGap, file: string, log: Logger, gaps: { inc(): void }): void {
  gaps.inc();
  log.error("the audit log lost lines: its chain does not reach the head the vault store recorded; a gap line now records it (docs/operations.md \"Audit log\")", {
    file, reason: gap.reason, expectedIndex: gap.expected.index, expectedHash: gap.expected.hash,
    foundIndex: gap.found?.index ?? null, foundHash: gap.found?.hash ?? null,
  });
}

const FORMAT = 1;
const HASH_BYTES = 32;
const KEY = localKey("audithead");

/** Puts `head` into the store's open batch (the commit about to be sealed). */
export function recordAuditHead(store: { put(key: Uint8Array, value: Uint8Array): void }, head: AuditHead): void {
  store.put(KEY, encodeAuditHead(head));
}

/**
 * The head the store's last commit recorded; undefined when it holds none
 * (a store of a release before the record, a store just installed from a
 * snapshot) or one this release cannot read: nothing to check then.
 */
export function recordedAuditHead(store: { get(key: Uint8Array): Uint8Array | undefined }): AuditHead | undefined {
  const v = store.get(KEY);
  return v === undefined ? undefined : decodeAuditHead(v);
}

export function encodeAuditHead(head: AuditHead): Uint8Array {
  const hash = Buffer.from(head.hash, "hex");
  if (!Number.isSafeInteger(head.index) || head.index < 0 || hash.length !== HASH_BYTES || hash.toString("hex") !== head.hash) {
    throw new RangeError(`not an audit chain head: ${JSON.stringify(head)}`);
  }
  const v = Buffer.alloc(1 + 8 + HASH_BYTES);
  v.writeUInt8(FORMAT, 0);
  v.writeBigUInt64BE(BigInt(head.index), 1);
  hash.copy(v, 9);
  return new Uint8Array(v);
}

/** The head a value names; undefined for another format or length. */
export function decodeAuditHead(v: Uint8Array): AuditHead | undefined {
  const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (b.length !== 1 + 8 + HASH_BYTES || b[0] !== FORMAT) return undefined;
  const index = b.readBigUInt64BE(1);
  if (index > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return { index: Number(index), hash: b.subarray(9).toString("hex") };
}
