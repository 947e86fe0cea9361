// Exactly-once application of client requests (DESIGN §5, docs/vault.md §5).
// The outcome of each request id is remembered in a bounded FIFO: the last
// `capacity` request ids, oldest evicted first. Insertion order is the log
// order, so every node holds the same table at the same applied index.
//
// A request id is bound to the request it named: the SHA-256 of the whole
// command payload (its fingerprint). A retry is the same bytes; the same id
// with other bytes is refused and changes nothing.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { equalBytes } from "../../proto/crypto/index.js";
import { type VaultResult, decodeResult, encodeResult, vaultError } from "./result.js";
import { VaultInvariantError } from "./errors.js";

/** How many request ids are remembered (DESIGN §5). */
export const DEFAULT_REQUEST_ID_CAPACITY = 100_000;
export const FINGERPRINT_LENGTH = 32;

export interface RequestEntry {
  readonly requestId: Uint8Array;
  readonly fingerprint: Uint8Array;
  /** encodeResult of the first outcome. */
  readonly outcome: Uint8Array;
}

export function fingerprint(payload: Uint8Array): Uint8Array {
  return sha256(payload);
}

export class RequestTable {
  private readonly entries = new Map<string, RequestEntry>();

  constructor(readonly capacity: number = DEFAULT_REQUEST_ID_CAPACITY) {
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > 0xffffffff) {
      throw new VaultInvariantError(`request id capacity ${String(capacity)} must be in [1, 2^32-1]`);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The remembered outcome of this request id, undefined if unknown, or a
   * refusal if the id was used for a different payload.
   */
  lookup(requestId: Uint8Array, print: Uint8Array): VaultResult | undefined {
    const e = this.entries.get(key(requestId));
    if (e === undefined) return undefined;
    if (!equalBytes(e.fingerprint, print)) {
      return vaultError("REQUEST_ID_REUSED", "this request id was already used for a different request: a retry must resend the same request, a new request needs a new id");
    }
    return decodeResult(e.outcome);
  }

  /** Remembers a new request id's outcome, evicting the oldest beyond capacity. */
  remember(requestId: Uint8Array, print: Uint8Array, outcome: VaultResult): void {
    this.add({ requestId, fingerprint: print, outcome: encodeResult(outcome) });
  }

  /** Appends an entry (FIFO order); used by remember and by snapshot restore. */
  add(entry: RequestEntry): void {
    const k = key(entry.requestId);
    if (this.entries.has(k)) throw new VaultInvariantError("a request id is remembered twice");
    this.entries.set(k, entry);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }

  /** Entries oldest first. */
  list(): IterableIterator<RequestEntry> {
    return this.entries.values();
  }
}

function key(requestId: Uint8Array): string {
  return bytesToHex(requestId);
}
