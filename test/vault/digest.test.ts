// The state digest (node/vault/digest.ts, docs/vault.md §4): an LtHash kept
// incrementally and the counters by value, equal to one computed from
// scratch over the store's pairs, equal for equal states however they were
// reached, different for any difference, checked when a snapshot is
// imported, and upgraded from the layouts before.
import test from "ava";
import { type Command, CorruptSnapshotError, MemoryStore, VaultStateMachine } from "../../node/vault/index.js";
import { createHash } from "node:crypto";
import { LTHASH_BYTES, LtHash, pairHash } from "../../node/vault/digest.js";
import { ALL_KEYS, PREFIX, metaKey, recordKey } from "../../node/vault/keys.js";
import { COUNTERS } from "../../node/vault/state.js";
import { CLUSTER, Harness, NODES, announcement, beginCmd, blindedPoint, confirmCmd, deleteCmd, hex, register, registerCmd } from "../../testkit/vault.js";
import { editSnapshot, rewriteAsLayout2 } from "../../testkit/vault-store.js";

const alice = register("alice", { guessLimit: 3 });
const bob = register("bob", { guessLimit: 2 });
const zed = register("Zed ✓", { guessLimit: 2 });

/** A log touching every part of the state: records (active, pending, confirmed, locked), nodes, refusals. */
function log(): Command[] {
  return [
    { kind: "announce", node: announcement(NODES[2] as (typeof NODES)[number]) },
    registerCmd(zed),
    registerCmd(bob),
    { kind: "announce", node: announcement(NODES[0] as (typeof NODES)[number]) },
    registerCmd(alice),
    beginCmd("alice", blindedPoint(5)),
    beginCmd("alice", blindedPoint(6)),
    confirmCmd(alice, 7), // the begin at index 7: alice's confirmed attempt ("c" || "alice")
    beginCmd("alice", blindedPoint(4)),
    beginCmd("bob"),
    beginCmd("bob"),
    beginCmd("bob"), // bob is locked
    beginCmd("nobody"), // refused: only the request table and the index move
    deleteCmd(zed),
    registerCmd(zed),
  ];
}

function replay(cmds: readonly Command[], h = new Harness()): Harness {
  for (const c of cmds) h.apply(c);
  return h;
}

const b = (s: string): Uint8Array => Buffer.from(s, "latin1");
const latin1 = (k: Uint8Array): string => Buffer.from(k).toString("latin1");

/** The digest recomputed from pairs: the LtHash of all but "mdigest" and the counters, then the counters' bytes (a missing one: none). */
function digestOfPairs(pairs: Iterable<readonly [Uint8Array, Uint8Array]>): string {
  const sum = new LtHash();
  const counters = new Map<string, Uint8Array>();
  for (const [k, v] of pairs) {
    if (COUNTERS.some((c) => latin1(k) === `m${c}`)) counters.set(latin1(k).slice(1), v);
    else if (latin1(k) !== "mdigest") sum.add(k, v);
  }
  return hex(sum.digest(Buffer.concat(COUNTERS.map((c) => counters.get(c) ?? new Uint8Array(0)))));
}

function fromScratch(store: MemoryStore): string {
  return digestOfPairs(store.scan(...ALL_KEYS));
}


test("LtHash: known answers (checked against Python's hashlib shake_256 and sha256)", (t) => {
  t.is(hex(new LtHash().digest()), "fa4267f9b73afdb4db50da2a8447335eaf8f60f9cd32b26c6f954a96e7bc9c7d", "the empty set: SHA-256 of the prefix and 2048 zero bytes");
  const h = new LtHash();
  h.add(b("k"), b("v"));
  h.add(b("mformat"), Uint8Array.of(2));
  h.remove(b("r"), b(""));
  t.is(hex(h.state().subarray(0, 8)), "69731fac3f42b369");
  t.is(hex(h.digest()), "a6e52a801b0aff6cd07f0b261a2adaec5f5e4d21b42e45be02eb8f35c6ea3e75");
  t.is(hex(h.digest()), hex(createHash("sha256").update("bkv-lthash16").update(h.state()).digest()));
});

test("LtHash: adding in any order gives the same state; remove undoes add; a state round-trips", (t) => {
  const pairs = Array.from({ length: 20 }, (_, i) => [b(`key-${i}`), b(`value-${i * 7}`)] as const);
  const forward = new LtHash();
  const backward = new LtHash();
  for (const [k, v] of pairs) forward.add(k, v);
  for (const [k, v] of [...pairs].reverse()) backward.add(k, v);
  t.is(hex(forward.state()), hex(backward.state()));
  t.is(forward.state().length, LTHASH_BYTES);
  const copy = new LtHash(forward.state());
  for (const [k, v] of pairs.slice(10)) copy.remove(k, v);
  const half = new LtHash();
  for (const [k, v] of pairs.slice(0, 10)) half.add(k, v);
  t.is(hex(copy.digest()), hex(half.digest()));
  for (const [k, v] of pairs.slice(0, 10)) copy.remove(k, v);
  t.is(hex(copy.digest()), hex(new LtHash().digest()), "everything removed: the empty set");
  t.not(hex(forward.digest()), hex(half.digest()));
  t.throws(() => new LtHash(new Uint8Array(32)), { message: /LtHash state of 32 bytes/ });
});

test("LtHash: the word-wise lane arithmetic equals adding and subtracting lane by lane mod 2^16", (t) => {
  const lanes = new Uint16Array(LTHASH_BYTES / 2);
  const sum = new LtHash();
  for (let i = 0; i < 400; i++) {
    const seed = createHash("sha256").update(`pair ${i}`).digest();
    const [k, v] = [seed.subarray(0, 1 + (i % 32)), Buffer.alloc((i * 37) % 1500, seed)];
    const h = pairHash(k, v);
    const sign = i % 3 === 2 ? -1 : 1; // every third pair removed (mostly never added: lanes wrap below zero)
    if (sign > 0) sum.add(k, v);
    else sum.remove(k, v);
    for (let j = 0; j < lanes.length; j++) lanes[j] = (lanes[j]! + sign * h[j]!) & 0xffff;
    if (i % 50 === 0 || i === 399) t.is(hex(sum.state()), hex(new Uint8Array(lanes.buffer)), `after pair ${i}`);
  }
  t.true(lanes.some((x) => x >= 0x8000) && lanes.some((x) => x < 0x8000), "both halves of the lane range reached");
});

test("a store of layout 1 (sums of SHA-256) is upgraded on open: the digests are recomputed from its pairs", (t) => {
  const store = new MemoryStore();
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER, store }));
  for (const c of log()) h.apply(c);
  const want = hex(h.sm.digest());
  store.put(metaKey("format"), Uint8Array.of(1));
  store.put(metaKey("digest"), new Uint8Array(32).fill(7));
  store.put(metaKey("content"), new Uint8Array(32).fill(9));
  const upgraded = new VaultStateMachine({ clusterId: CLUSTER, store });
  t.is(hex(upgraded.digest()), want);
  t.deepEqual([...(store.get(metaKey("format")) ?? [])], [3]);
  t.is(store.get(metaKey("digest"))?.length, LTHASH_BYTES);
  t.is(store.get(metaKey("content")), undefined);
  t.is(hex(VaultStateMachine.restore({ clusterId: CLUSTER }, upgraded.snapshot()).digest()), want, "its snapshot imports");
});

test("a store of layout 2 (counters in the LtHash, a content LtHash) is upgraded on open from its stored state: the digest of the same log applied now", (t) => {
  const store = new MemoryStore();
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER, store }));
  for (const c of log()) h.apply(c);
  const want = hex(h.sm.digest());
  const current = store.get(metaKey("digest"));
  rewriteAsLayout2(store);
  t.not(hex(store.get(metaKey("digest")) ?? new Uint8Array(0)), hex(current ?? new Uint8Array(0)));
  const upgraded = new VaultStateMachine({ clusterId: CLUSTER, store });
  t.is(hex(upgraded.digest()), want);
  t.is(fromScratch(store), want);
  t.deepEqual([...(store.get(metaKey("format")) ?? [])], [3]);
  t.is(store.get(metaKey("content")), undefined);
  t.is(hex(VaultStateMachine.restore({ clusterId: CLUSTER }, upgraded.snapshot()).digest()), want, "its snapshot imports");
  const next = new Harness(upgraded);
  next.index = h.index;
  next.apply(beginCmd("alice", blindedPoint(9)));
  t.is(hex(upgraded.digest()), fromScratch(store), "kept incrementally after the upgrade");
});

test("a store snapshot of layout 2 (a node not yet upgraded) is refused on import with the reason", (t) => {
  const store = new MemoryStore();
  const { sm } = replay(log(), new Harness(new VaultStateMachine({ clusterId: CLUSTER, store })));
  rewriteAsLayout2(store); // as the release before kept it: a snapshot streams the store's pairs as they are
  t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, sm.snapshot()), { instanceOf: CorruptSnapshotError, message: /a store of layout 2, not 3.*upgrade every node/ });
});

test("the incremental digest equals the sum over the store's pairs after every entry", (t) => {
  const store = new MemoryStore();
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER, store }));
  t.is(hex(h.sm.digest()), fromScratch(store));
  for (const c of log()) {
    h.apply(c);
    t.is(hex(h.sm.digest()), fromScratch(store), `after ${c.kind}`);
  }
});

test("a node that applied the log and one that restored a snapshot midway have the same digest and the same pairs", (t) => {
  const cmds = log();
  const applied = replay(cmds);
  const donor = replay(cmds.slice(0, 8));
  const store = new MemoryStore();
  const restored = new Harness(VaultStateMachine.restore({ clusterId: CLUSTER, store }, donor.sm.snapshot()));
  restored.index = donor.index;
  replay(cmds.slice(8), restored);
  t.is(restored.sm.appliedIndex, applied.sm.appliedIndex);
  t.is(hex(restored.sm.digest()), hex(applied.sm.digest()));
  t.is(hex(restored.sm.snapshot()), hex(applied.sm.snapshot()), "byte-identical stores");
});

test("every applied entry changes the digest, refusals included", (t) => {
  const h = new Harness();
  const seen = new Set([hex(h.sm.digest())]);
  for (const c of log()) {
    h.apply(c);
    seen.add(hex(h.sm.digest()));
  }
  h.sm.skip(h.index + 1);
  seen.add(hex(h.sm.digest()));
  t.is(seen.size, log().length + 2);
});

test("a change to any pair, or a missing pair, changes the digest; a pair forged behind the digest's back is refused on import", (t) => {
  const h = replay(log());
  const base = h.sm.snapshot();
  const pairs = [...h.sm.store.scan(...ALL_KEYS)].filter(([k]) => latin1(k) !== "mdigest");
  const digestOf = (edit: (k: Uint8Array, v: Uint8Array, i: number) => Uint8Array | null) => {
    const edited = pairs.map(([k, v], i) => [k, edit(k, v, i)] as const).filter((p): p is readonly [Uint8Array, Uint8Array] => p[1] !== null);
    return digestOfPairs(edited);
  };
  t.is(digestOf((_, v) => v), hex(h.sm.digest()));
  const seen = new Map<string, string>([[hex(h.sm.digest()), "unchanged"]]);
  pairs.forEach(([key], i) => {
    const what = Buffer.from(key).toString("latin1");
    for (const [how, edit] of [["changed", (v: Uint8Array) => flipLast(v)], ["removed", () => null]] as const) {
      const d = digestOf((_, v, j) => (j === i ? edit(v) : v));
      t.is(seen.get(d), undefined, `${what} ${how} gives the digest of ${seen.get(d) ?? ""}`);
      seen.set(d, `${what} ${how}`);
    }
  });
  t.true([PREFIX.record, PREFIX.confirmation, PREFIX.node, PREFIX.request].every((p) => pairs.some(([k]) => k[0] === p)), "every table is among the pairs changed");
  t.true(COUNTERS.every((c) => pairs.some(([k]) => latin1(k) === `m${c}`)), "the counters are among the pairs changed");
  const forge = (name: string) => {
    const store = new MemoryStore();
    VaultStateMachine.restore({ clusterId: CLUSTER, store }, base);
    const [key, value] = [...store.scan(...ALL_KEYS)].find(([k]) => latin1(k) === name) ?? [];
    if (key === undefined || value === undefined) throw new Error(`no pair ${name}`);
    store.put(key, flipLast(value));
    return new VaultStateMachine({ clusterId: CLUSTER, store }).snapshot();
  };
  const order = pairs.find(([k]) => k[0] === PREFIX.order)?.[0] ?? new Uint8Array(0);
  t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, forge(latin1(order))), { instanceOf: CorruptSnapshotError, message: /digest does not match/ });
  const timeForged = VaultStateMachine.restore({ clusterId: CLUSTER }, forge("mtime"));
  t.not(hex(timeForged.digest()), hex(h.sm.digest()), "a counter is covered by value: the digest a peer would vouch for differs");
});

test("a record edited through the state keeps a consistent digest and restores (the forging tool works)", (t) => {
  const h = replay(log());
  const forged = editSnapshot(CLUSTER, h.sm.snapshot(), (s) => s.write(recordKey("nobody-else"), null));
  t.is(hex(VaultStateMachine.restore({ clusterId: CLUSTER }, forged).digest()), hex(h.sm.digest()), "deleting a missing key changes nothing");
});

test("the digest is handed out as a copy", (t) => {
  const h = replay(log());
  const d = h.sm.digest();
  d.fill(0);
  t.not(hex(h.sm.digest()), hex(d));
});

function flipLast(v: Uint8Array): Uint8Array {
  const out = v.slice();
  out[out.length - 1] = (out.at(-1) ?? 0) ^ 1;
  return out;
}
