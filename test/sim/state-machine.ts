// The replicated state machine of the simulation: the ordered list of
// applied proposal ids plus a running digest over every applied entry
// (index, term, type, data). Two nodes that applied the same entries have the
// same digest at the same index; the checker compares digests by index.

import { type Entry, EntryType } from "../../node/raft/types.js";

const PROPOSAL_PREFIX = "p";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeProposal(id: number): Uint8Array {
  return encoder.encode(`${PROPOSAL_PREFIX}${id}`);
}

/** The proposal id carried by a normal entry, or null for the leader's no-op / foreign data. */
export function decodeProposal(data: Uint8Array): number | null {
  if (data.byteLength === 0) return null;
  const s = decoder.decode(data);
  if (!s.startsWith(PROPOSAL_PREFIX)) return null;
  const id = Number(s.slice(PROPOSAL_PREFIX.length));
  return Number.isSafeInteger(id) ? id : null;
}

/** A stable identity of an entry: equal keys <=> identical term, type and data. */
export function entryKey(e: Entry): string {
  return `${e.term}/${e.type}/${Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).toString("hex")}`;
}

/** FNV-1a over a string, continuing from `h`. */
function fnv(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export interface SmSnapshot {
  readonly applied: number;
  readonly digest: string;
  readonly ids: readonly number[];
}

export class StateMachine {
  applied: number;
  /** Two independent 32-bit FNV-1a lanes, printed as 16 hex digits. */
  private h1: number;
  private h2: number;
  private readonly ids: number[];
  private readonly idSet: Set<number>;
  /** How many applied proposals were duplicates (a retried/duplicated MsgProp): allowed, counted. */
  duplicates = 0;

  constructor(snap: SmSnapshot = { applied: 0, digest: "811c9dc5050c5d1f", ids: [] }) {
    this.applied = snap.applied;
    this.h1 = parseInt(snap.digest.slice(0, 8), 16);
    this.h2 = parseInt(snap.digest.slice(8, 16), 16);
    this.ids = [...snap.ids];
    this.idSet = new Set(snap.ids);
  }

  digest(): string {
    return this.h1.toString(16).padStart(8, "0") + this.h2.toString(16).padStart(8, "0");
  }

  /**
   * Applies entry `e`. The caller (the checker) has verified that e.index is
   * applied + 1. Returns the proposal id it carried, if any.
   */
  apply(e: Entry): number | null {
    const key = `${e.index}:${entryKey(e)}`;
    this.h1 = fnv(this.h1, key);
    this.h2 = fnv(this.h2 ^ 0x5bd1e995, key);
    this.applied = e.index;
    const id = e.type === EntryType.Normal ? decodeProposal(e.data) : null;
    if (id === null) return null;
    if (this.idSet.has(id)) {
      this.duplicates++;
      return id;
    }
    this.idSet.add(id);
    this.ids.push(id);
    return id;
  }

  has(id: number): boolean {
    return this.idSet.has(id);
  }

  appliedIds(): readonly number[] {
    return this.ids;
  }

  snapshot(): SmSnapshot {
    return { applied: this.applied, digest: this.digest(), ids: [...this.ids] };
  }

  encode(): Uint8Array {
    return encoder.encode(JSON.stringify(this.snapshot()));
  }

  /** Restores from snapshot data; throws on data that is not a state-machine snapshot. */
  static decode(data: Uint8Array): StateMachine {
    const v = JSON.parse(decoder.decode(data)) as unknown;
    if (!isSmSnapshot(v)) throw new Error("state machine: snapshot data is malformed");
    return new StateMachine(v);
  }
}

function isSmSnapshot(v: unknown): v is SmSnapshot {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.applied === "number" && typeof o.digest === "string" && /^[0-9a-f]{16}$/.test(o.digest)
    && Array.isArray(o.ids) && o.ids.every((x) => Number.isSafeInteger(x));
}
