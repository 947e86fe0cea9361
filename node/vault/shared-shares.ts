// Records that hold the same share (docs/threat-model.md, "Closed: a
// victim's shares copied into another record"). A cluster bootstrapped by a
// release before bound shares took unbound shares (wrap blob v1), which are
// bound to nothing of their record: a member, or a thief of a disk or a
// backup, could register a copy of a victim's shares under another user and
// guess the victim's password there, with epochs of its own. The activation
// (`bkv admin require-bound-shares`) refuses new copies; a copy registered
// before it stays. This scan finds them in a node's state: every share
// (node id, K_i) held by the records of two or more users.
//
// Two passes over the records, so that memory does not grow with the number
// of shares: the first keeps a 30-bit hash of each share (a small integer in
// a Set) and notes the hashes seen twice; the second keeps, for those hashes
// only, the share itself and its users. A hash collision costs a little
// memory in the second pass, never a false report.
import { parseTrustedRecord } from "../../proto/crypto/index.js";
import { PREFIX, metaKey, readU64, tableRange } from "./keys.js";
import { recordBody } from "./values.js";
import type { VaultStore } from "./store.js";

/** Records read between two yields of findSharedShares (its caller gives the event loop a turn there). */
export const SHARED_SHARES_RECORDS_PER_STEP = 256;

/** Users listed per shared share at most (the count is always whole). */
export const SHARED_SHARE_USERS_LISTED = 100;

export interface SharedShare {
  /** The node whose share this is. */
  readonly nodeId: number;
  /** K_i: the share's public point (SEC1 compressed). */
  readonly publicShare: Uint8Array;
  /** Users whose records hold it, in key order: at most SHARED_SHARE_USERS_LISTED. */
  readonly users: readonly string[];
  /** How many users' records hold it. */
  readonly holders: number;
}

export interface SharedSharesReport {
  /** The applied index of the state scanned. */
  readonly appliedIndex: number;
  /** Records read (locked ones hold no shares and are skipped). */
  readonly records: number;
  /** Every share held by the records of two or more users, in order of the first holder's key. */
  readonly shared: readonly SharedShare[];
}

/** What the scan reads of a store. */
export type ReadableStore = Pick<VaultStore, "get" | "scan">;

interface Holding {
  readonly user: string;
  readonly nodeId: number;
  readonly publicShare: Uint8Array;
}

/**
 * The shares of `store` held by two or more users' records. A generator:
 * it yields after every SHARED_SHARES_RECORDS_PER_STEP records, so that a
 * caller can pace a scan of millions. It holds no scan of the store open
 * across a yield (each page is a scan of its own, read whole before the
 * yield), so the store may commit, or be replaced, meanwhile: the report is
 * of the state at its appliedIndex, less records registered during the scan.
 */
export function* findSharedShares(store: ReadableStore): Generator<void, SharedSharesReport> {
  const applied = store.get(metaKey("applied"));
  const seen = new Set<number>();
  const twice = new Set<number>();
  let records = 0;
  for (const page of recordPages(store)) {
    for (const h of page.holdings) {
      const hash = shareHash(h.nodeId, h.publicShare);
      if (seen.has(hash)) twice.add(hash);
      else seen.add(hash);
    }
    records += page.records;
    yield;
  }
  seen.clear();
  const groups = new Map<string, Group>();
  for (const page of recordPages(store)) {
    for (const h of page.holdings) if (twice.has(shareHash(h.nodeId, h.publicShare))) addHolder(groups, h);
    yield;
  }
  const shared = [...groups.values()].filter((g) => g.holders > 1).map(({ nodeId, publicShare, users, holders }) => ({ nodeId, publicShare, users, holders }));
  return { appliedIndex: applied === undefined ? 0 : readU64(applied), records, shared };
}

/**
 * The records of `store` in key order, SHARED_SHARES_RECORDS_PER_STEP at a
 * time: each page's shares (unlocked records only; copied out of the store's
 * buffers) and how many records it read. Each page is one scan, ended before
 * the page is handed out.
 */
function* recordPages(store: ReadableStore): Generator<{ readonly holdings: readonly Holding[]; readonly records: number }> {
  const end = tableRange(PREFIX.record)[1];
  let start = tableRange(PREFIX.record)[0];
  for (;;) {
    const holdings: Holding[] = [];
    let records = 0;
    let last: Uint8Array | null = null;
    for (const [key, value] of store.scan(start, end)) {
      holdingsOf(key, value, holdings);
      last = key.slice();
      if (++records === SHARED_SHARES_RECORDS_PER_STEP) break;
    }
    if (records > 0) yield { holdings, records };
    if (last === null || records < SHARED_SHARES_RECORDS_PER_STEP) return;
    start = afterKey(last);
  }
}

/** Appends the shares of one record (none when it is locked: its shares are wiped). */
function holdingsOf(key: Uint8Array, value: Uint8Array, into: Holding[]): void {
  const body = recordBody(value);
  if (body === null) return;
  const user = Buffer.from(key.subarray(1)).toString("utf8");
  for (const s of parseTrustedRecord(body).shares) into.push({ user, nodeId: s.nodeId, publicShare: s.publicShare.slice() });
}

/** The least key after `key` (`key` ‖ 0x00). */
function afterKey(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.length + 1);
  next.set(key);
  return next;
}

interface Group { readonly nodeId: number; readonly publicShare: Uint8Array; readonly users: string[]; holders: number; last: string }

function addHolder(groups: Map<string, Group>, h: Holding): void {
  const id = `${h.nodeId}:${Buffer.from(h.publicShare).toString("hex")}`;
  const g = groups.get(id) ?? { nodeId: h.nodeId, publicShare: h.publicShare, users: [], holders: 0, last: "" };
  groups.set(id, g);
  if (g.holders > 0 && g.last === h.user) return; // one record holding the share twice counts its user once
  g.last = h.user;
  g.holders++;
  if (g.users.length < SHARED_SHARE_USERS_LISTED) g.users.push(h.user);
}

/** 30 bits of (node id, K_i): K_i's x-coordinate is uniform, so its first bytes are a hash. */
function shareHash(nodeId: number, publicShare: Uint8Array): number {
  const x = (publicShare[1]! << 22) ^ (publicShare[2]! << 14) ^ (publicShare[3]! << 6) ^ publicShare[4]!;
  return (x ^ Math.imul(nodeId, 0x9e3779b1) ^ publicShare[0]!) & 0x3fffffff;
}
