// Exactly-once application of client requests (DESIGN §5, docs/vault.md §5).
// The outcome of each request id is remembered in a bounded FIFO kept in the
// store: "q" || id holds the fingerprint, the sequence and the outcome, and
// "o" || sequence the id, so the oldest is the first "o" key, evicted once
// more than `capacity` ids are remembered. The sequence is the log index
// that applied the request, so every node holds the same table at the same
// applied index. A legacy snapshot's entries (which lack their indexes) get
// 1..n in their order, below any index after the snapshot: nodes converted
// from different snapshots differ in those keys, hence in their digests,
// until the converted entries are evicted (docs/vault.md §5).
//
// A request id is bound to the request it named: the SHA-256 of the whole
// command payload (its fingerprint). A retry is the same bytes; the same id
// with other bytes is refused and changes nothing.
import { sha256 } from "@noble/hashes/sha2.js";
import { equalBytes } from "../../proto/crypto/index.js";
import { requestBytes } from "./commands.js";
import { PREFIX, orderKey, requestKey, tableRange, u64 } from "./keys.js";
import { type VaultResult, decodeResult, encodeResult, vaultError } from "./result.js";
import type { StoreState } from "./state.js";
import { VaultInvariantError } from "./errors.js";
import { firstPair } from "./store.js";

/**
 * How many request ids a new cluster remembers (DESIGN §5: the window a
 * retry must fall in). Clusters converted from a legacy snapshot keep the
 * capacity they had (100,000), since every node must evict alike.
 */
export const DEFAULT_REQUEST_ID_CAPACITY = 1_000_000;
export const FINGERPRINT_LENGTH = 32;
const SEQUENCE_LENGTH = 8;

export function fingerprint(payload: Uint8Array): Uint8Array {
  return sha256(payload);
}

/** The fingerprint of the request a payload carries (stamped or not, with a token or not): what apply binds its request id to. */
export function requestFingerprint(payload: Uint8Array): Uint8Array {
  return fingerprint(requestBytes(payload));
}

export class RequestTable {
  constructor(private readonly s: StoreState) {}

  get capacity(): number {
    return this.s.requestIdCapacity;
  }

  get size(): number {
    return this.s.reqCount;
  }

  /**
   * The remembered outcome of this request id, undefined if unknown, or a
   * refusal if the id was used for a different payload.
   */
  lookup(requestId: Uint8Array, print: Uint8Array): VaultResult | undefined {
    const v = this.s.store.get(requestKey(requestId));
    if (v === undefined) return undefined;
    if (!equalBytes(v.subarray(0, FINGERPRINT_LENGTH), print)) {
      return vaultError("REQUEST_ID_REUSED", "this request id was already used for a different request: a retry must resend the same request, a new request needs a new id");
    }
    return decodeResult(v.subarray(FINGERPRINT_LENGTH + SEQUENCE_LENGTH));
  }

  /** Remembers the outcome of a new request id applied at `index`, evicting the oldest beyond capacity. */
  remember(requestId: Uint8Array, print: Uint8Array, outcome: VaultResult, index: number): void {
    this.add(requestId, print, encodeResult(outcome), index);
  }

  /** Appends an entry at sequence `seq`, above every remembered one (remember, and legacy conversion). */
  add(requestId: Uint8Array, print: Uint8Array, outcome: Uint8Array, seq: number): void {
    const key = requestKey(requestId);
    if (this.s.store.get(key) !== undefined) throw new VaultInvariantError("a request id is remembered twice");
    const value = new Uint8Array(FINGERPRINT_LENGTH + SEQUENCE_LENGTH + outcome.length);
    value.set(print);
    value.set(u64(seq), FINGERPRINT_LENGTH);
    value.set(outcome, FINGERPRINT_LENGTH + SEQUENCE_LENGTH);
    this.s.write(key, value);
    this.s.write(orderKey(seq), requestId.slice());
    this.s.setMetaU64("reqcount", ++this.s.reqCount);
    while (this.size > this.capacity) this.evictOldest();
  }

  private evictOldest(): void {
    const first = firstPair(this.s.store, ...tableRange(PREFIX.order));
    if (first === undefined) throw new VaultInvariantError(`${this.size} request ids counted, none in the order table`);
    const [okey, id] = first;
    this.s.write(requestKey(id), null);
    this.s.write(okey, null);
    this.s.setMetaU64("reqcount", --this.s.reqCount);
  }
}
