// The audit log format (docs/operations.md "Audit log"), shared by the node
// that writes it (node/server/audit.ts) and the tools that read it
// (client/cli/admin-audit.ts).
//
// One JSON object per line, keys in the order of AuditEvent then `prev` and
// `hash`, serialized by JSON.stringify with no spaces. `prev` is the previous
// line's `hash` (64 zeros for the first line of a file); `hash` is the
// SHA-256 (hex) of the line's own JSON text without its `hash` key. A line
// verifies only if it is byte for byte the canonical serialization of what it
// parses to, so any changed byte fails at its line. Never a password, key,
// share, token or PIN: the fields below are all there is.
import { createHash } from "node:crypto";

export const AUDIT_FORMAT = 1;
export const GENESIS_HASH = "0".repeat(64);

export type AuditKind = "segment" | "register" | "attempt" | "lockout" | "confirm" | "delete" | "membership" | "issuers" | "bind-shares" | "invalid" | "gap";

/** What one line says, before chaining. Optional fields appear only when known. */
export interface AuditEvent {
  /** The Raft index of the applied entry (for a segment: the snapshot index the chain starts from). */
  readonly index: number;
  readonly kind: AuditKind;
  /** The record's user id, which is also the authenticated subject of the call that proposed it. */
  readonly user?: string;
  /** The request id, hex. */
  readonly requestId?: string;
  /** "ok", the vault's refusal reason (e.g. "RECORD_CHANGED", "GUESS_LIMIT_REACHED"), or "ignored" (a membership entry that changed nothing). */
  readonly outcome?: string;
  /** membership, outcome "ignored": why (Raft's refusal against the configuration, e.g. "node 4 is already a member", or "undecodable"); gap: "behind" or "differs". */
  readonly reason?: string;
  readonly attemptsRemaining?: number;
  /** register: the record version written. */
  readonly version?: number;
  /** membership: the change (AddLearner, AddNode, RemoveNode, ...) and the node it concerns. */
  readonly change?: string;
  readonly node?: number;
  /** segment: where this chain segment starts: "bootstrap" (a new cluster) or "snapshot" (state installed from a snapshot). */
  readonly from?: "bootstrap" | "snapshot";
  /**
   * gap: the chain head (index, hash) the node's vault store recorded, which
   * the file's chain did not reach at the node's start (lines were lost;
   * `reason` "behind": the file ended before that index, "differs": it holds
   * another line there). The gap line follows the lines the file still held.
   */
  readonly expectedIndex?: number;
  readonly expectedHash?: string;
}

export interface AuditLine extends AuditEvent {
  readonly v: number;
  readonly prev: string;
  readonly hash: string;
}

// A field added later goes anywhere in this order: lines without it serialize as before, so older files still verify.
const FIELDS = ["index", "kind", "user", "requestId", "outcome", "reason", "attemptsRemaining", "version", "change", "node", "from", "expectedIndex", "expectedHash"] as const;

/** The line (without newline) for `event` chained after `prev`, and its hash. */
export function auditLine(event: AuditEvent, prev: string): { text: string; hash: string } {
  const body: Record<string, unknown> = { v: AUDIT_FORMAT };
  for (const f of FIELDS) if (event[f] !== undefined) body[f] = event[f];
  body.prev = prev;
  const json = JSON.stringify(body);
  const hash = sha256Hex(json);
  // JSON.stringify({ ...body, hash }) without serialising body again: hash is hex (nothing to escape), body ends in "}".
  return { text: `${json.slice(0, -1)},"hash":"${hash}"}`, hash };
}

/** Parses one line; throws with a reason if it is not a canonical, self-consistent audit line. */
export function parseAuditLine(text: string): AuditLine {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw new Error("not JSON");
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new Error("not a JSON object");
  const line = o as AuditLine;
  if (line.v !== AUDIT_FORMAT) throw new Error(`unknown format ${JSON.stringify(line.v)}`);
  if (!Number.isSafeInteger(line.index) || line.index < 0) throw new Error("index is not a non-negative integer");
  if (typeof line.prev !== "string" || typeof line.hash !== "string") throw new Error("prev or hash missing");
  const { text: canonical, hash } = auditLine(line, line.prev);
  if (hash !== line.hash) throw new Error("hash does not match the line's content");
  if (canonical !== text) throw new Error("not in canonical form");
  return line;
}

/** A gap line of a chain that verifies: where the node found lines missing. `line` is 1-based. */
export interface AuditGapNote {
  readonly line: number;
  /** The index of the line before the gap line (-1: none, the file had lost every line). */
  readonly afterIndex: number;
  readonly expectedIndex: number;
  readonly expectedHash: string;
  readonly reason: string;
}

export type AuditVerdict =
  /** `gaps`: the gap lines the node wrote (empty: no loss recorded). */
  | { readonly ok: true; readonly lines: number; readonly lastIndex: number; readonly lastHash: string; readonly gaps: readonly AuditGapNote[] }
  /** `line` is 1-based. */
  | { readonly ok: false; readonly line: number; readonly reason: string };

/**
 * Verifies a whole audit file's text: every line canonical, hashes chained
 * from GENESIS_HASH, indexes increasing (a segment or a gap line may repeat
 * the index before it); lists the gap lines, each a loss the node found.
 */
export function verifyAuditChain(text: string): AuditVerdict {
  const rows = text.split("\n");
  if (rows.at(-1) === "") rows.pop();
  else if (rows.length > 0) return { ok: false, line: rows.length, reason: "the last line is not terminated (a torn write?)" };
  let prev = GENESIS_HASH;
  let lastIndex = -1;
  const gaps: AuditGapNote[] = [];
  for (const [i, row] of rows.entries()) {
    let line: AuditLine;
    try {
      line = parseAuditLine(row);
    } catch (err) {
      return { ok: false, line: i + 1, reason: (err as Error).message };
    }
    if (line.prev !== prev) return { ok: false, line: i + 1, reason: "prev is not the previous line's hash" };
    if (line.index < lastIndex || (line.index === lastIndex && line.kind !== "segment" && line.kind !== "gap")) {
      return { ok: false, line: i + 1, reason: `index ${line.index} does not follow ${lastIndex}` };
    }
    if (line.kind === "gap") {
      const note = gapNote(line, i + 1, lastIndex);
      if (typeof note === "string") return { ok: false, line: i + 1, reason: note };
      gaps.push(note);
    }
    prev = line.hash;
    lastIndex = line.index;
  }
  return { ok: true, lines: rows.length, lastIndex, lastHash: prev, gaps };
}

/** What a gap line records, or why it is not a gap line. */
function gapNote(line: AuditLine, at: number, afterIndex: number): AuditGapNote | string {
  const { expectedIndex, expectedHash, reason } = line;
  if (!Number.isSafeInteger(expectedIndex) || (expectedIndex as number) < 0 || typeof expectedHash !== "string" || !/^[0-9a-f]{64}$/.test(expectedHash)) {
    return "a gap line without the expected index and hash";
  }
  return { line: at, afterIndex, expectedIndex: expectedIndex as number, expectedHash, reason: reason ?? "" };
}

function sha256Hex(s: string): string {
  return createHash("sha256").update(s, "utf8").digest("hex");
}
