// This node's own count of the OPRF evaluations it released, per record
// epoch, kept outside the replicated state (docs/threat-model.md, "Closed:
// a state fed to one node takes its counters back").
//
// The replicated state says how many attempts a record has left; a rogue
// leader can feed one honest node states that forget attempts it counted
// (forked histories installed as snapshots, a record absent from the
// incoming state and registered again). Whatever state this node is given,
// the ledger holds it to at most `guessLimit` distinct evaluations per
// epoch: a record's registered bytes (its digest) and its last confirmation,
// named by what the owner's reset key signed, the attempt id it confirmed
// (epochOf below). So a genuine confirmation replayed at another log index
// in another history lands in the epoch it opened the first time
// (docs/threat-model.md, "Closed: a confirmation replayed at another
// index"). A record's epochs only move forward along one history (each
// confirmation confirms an attempt begun after the last one): the ledger
// refuses an evaluation in an epoch below the newest it holds for the
// record ("behind"), so a forked history that replays an older genuine
// confirmation does not reopen that epoch's unused evaluations. A share
// is evaluated under one record only (bound shares, docs/threat-model.md).
//
// Contract: admit resolves only after its transaction is durable (fsynced),
// and the caller releases an evaluation only after admit said so. Epochs are
// never removed: a node that loses its ledger (a new data dir) starts again
// from what its state says, like a new node.
//
// Layout: key = digest (32 bytes) ‖ confirmation (u64 big-endian: the
// epoch's EvaluationEpoch.confirmation); value = the epoch's admitted
// attempts, each attemptId (u64 big-endian) ‖ blinded element (33 bytes), in
// the order admitted. Ledgers written when the epoch was the confirmation's
// log index keep their meaning: a record confirmed then still has that
// epoch (epochOf).
import { mkdir } from "node:fs/promises";
import { type RootDatabase, open } from "lmdb";
import { checkLmdbDataFile } from "./lmdb-file.js";

export interface EvaluationEpoch {
  /** recordDigest of the record as registered. */
  readonly digest: Uint8Array;
  /**
   * The record's last confirmation: the attempt id it confirmed, or the log
   * index of one applied before states kept that id; 0: none (epochOf).
   */
  readonly confirmation: number;
}

/** What a record's epoch is read from (node/vault's RecordView has these). */
export interface EpochSource {
  readonly digest: Uint8Array;
  /** Log index of the last confirmation (0: none). */
  readonly confirmedAt: number;
  /** The attempt id the last confirmation confirmed (0: none, or applied before states kept it). */
  readonly confirmedAttempt: number;
}

/**
 * The epoch a record is in: its digest and its last confirmation, named by
 * the confirmed attempt id, which the owner signed and which is the same
 * wherever a rogue leader commits that confirmation again; for a record
 * confirmed before states kept that id, the confirmation's log index (its
 * epoch before, so an upgraded node keeps counting it). The two never name
 * the same epoch of one record: a later confirmation confirms an attempt
 * begun after the last one, whose id is above that one's index.
 */
export function epochOf(r: EpochSource): EvaluationEpoch {
  return { digest: r.digest, confirmation: r.confirmedAttempt > 0 ? r.confirmedAttempt : r.confirmedAt };
}

export interface EvaluatedAttempt {
  readonly attemptId: number;
  readonly blinded: Uint8Array;
}

/**
 * admitted: recorded now; again: this very attempt was admitted before;
 * spent: the epoch holds its limit of other attempts; behind: the ledger
 * holds a later epoch of the record (a later confirmation).
 */
export type LedgerVerdict = "admitted" | "again" | "spent" | "behind";

const DIGEST_BYTES = 32;
const BLINDED_BYTES = 33;
const ATTEMPT_BYTES = 8 + BLINDED_BYTES;

export class EvaluationLedger {
  private constructor(private readonly db: RootDatabase<Buffer, Buffer>) {}

  /** Opens (creating if needed) the ledger in `dir`. */
  static async open(dir: string): Promise<EvaluationLedger> {
    await mkdir(dir, { recursive: true });
    checkLmdbDataFile(dir, "evaluation ledger");
    // As the vault store: each commit fsynced, and a failed one reported to its caller (vault-store.ts).
    return new EvaluationLedger(open<Buffer, Buffer>({
      path: dir, keyEncoding: "binary", encoding: "binary", compression: false, overlappingSync: false, eventTurnBatching: false, noMemInit: false,
    }));
  }

  /** Records `attempt` under `epoch` unless the epoch already holds `limit` other attempts; resolves once durable. */
  admit(epoch: EvaluationEpoch, attempt: EvaluatedAttempt, limit: number): Promise<LedgerVerdict> {
    const key = epochKey(epoch);
    const entry = attemptEntry(attempt);
    return this.db.transaction(() => {
      if (this.newestConfirmation(epoch.digest) > epoch.confirmation) return "behind";
      const held = this.db.get(key) ?? Buffer.alloc(0);
      if (holdsEntry(held, entry)) return "again";
      if (held.length / ATTEMPT_BYTES >= limit) return "spent";
      void this.db.put(key, Buffer.concat([held, entry]));
      return "admitted";
    });
  }

  /** The confirmation of the newest epoch the ledger holds for record `digest` (0 when none): its keys sort by it. */
  private newestConfirmation(digest: Uint8Array): number {
    const start = Buffer.alloc(DIGEST_BYTES + 8, 0xff);
    start.set(digest, 0);
    for (const key of this.db.getKeys({ start, end: Buffer.from(digest), reverse: true, limit: 1 })) {
      if (key.length === DIGEST_BYTES + 8 && key.subarray(0, DIGEST_BYTES).equals(digest)) return Number(key.readBigUInt64BE(DIGEST_BYTES));
    }
    return 0;
  }

  /** The epoch's admitted attempts, oldest first (tests and inspection). */
  admitted(epoch: EvaluationEpoch): number[] {
    const held = this.db.get(epochKey(epoch)) ?? Buffer.alloc(0);
    const ids: number[] = [];
    for (let at = 0; at < held.length; at += ATTEMPT_BYTES) ids.push(Number(held.readBigUInt64BE(at)));
    return ids;
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

function epochKey(e: EvaluationEpoch): Buffer {
  if (e.digest.length !== DIGEST_BYTES || !Number.isSafeInteger(e.confirmation) || e.confirmation < 0) {
    throw new RangeError("evaluation ledger: an epoch is a 32-byte digest and a confirmation ≥ 0");
  }
  const key = Buffer.alloc(DIGEST_BYTES + 8);
  key.set(e.digest, 0);
  key.writeBigUInt64BE(BigInt(e.confirmation), DIGEST_BYTES);
  return key;
}

function attemptEntry(a: EvaluatedAttempt): Buffer {
  if (a.blinded.length !== BLINDED_BYTES || !Number.isSafeInteger(a.attemptId) || a.attemptId < 1) {
    throw new RangeError("evaluation ledger: an attempt is an id ≥ 1 and a 33-byte blinded element");
  }
  const entry = Buffer.alloc(ATTEMPT_BYTES);
  entry.writeBigUInt64BE(BigInt(a.attemptId), 0);
  entry.set(a.blinded, 8);
  return entry;
}

function holdsEntry(held: Buffer, entry: Buffer): boolean {
  for (let at = 0; at < held.length; at += ATTEMPT_BYTES) {
    if (held.subarray(at, at + ATTEMPT_BYTES).equals(entry)) return true;
  }
  return false;
}
