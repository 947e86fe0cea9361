// The state digest (node/vault/digest.ts, docs/vault.md §4): kept
// incrementally, equal to a sum computed from scratch over the store's
// pairs, equal for equal states however they were reached, different for
// any difference, and checked when a snapshot is imported.
import test from "ava";
import { type Command, CorruptSnapshotError, MemoryStore, VaultStateMachine } from "../../node/vault/index.js";
import { DigestSum } from "../../node/vault/digest.js";
import { ALL_KEYS, PREFIX, metaKey, recordKey } from "../../node/vault/keys.js";
import { StoreState } from "../../node/vault/state.js";
import { CLUSTER, Harness, NODES, announcement, beginCmd, blindedPoint, deleteCmd, hex, register, registerCmd } from "../../testkit/vault.js";
import { editSnapshot } from "../../testkit/vault-store.js";

const alice = register("alice", { guessLimit: 3 });
const bob = register("bob", { guessLimit: 2 });
const zed = register("Zed ✓", { guessLimit: 2 });

/** A log touching every part of the state: records (active, pending, locked), nodes, refusals. */
function log(): Command[] {
  return [
    { kind: "announce", node: announcement(NODES[2] as (typeof NODES)[number]) },
    registerCmd(zed),
    registerCmd(bob),
    { kind: "announce", node: announcement(NODES[0] as (typeof NODES)[number]) },
    registerCmd(alice),
    beginCmd("alice", blindedPoint(5)),
    beginCmd("alice", blindedPoint(6)),
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

/** The digest recomputed from scratch over every counted pair of a store. */
function fromScratch(store: MemoryStore): string {
  const sum = new DigestSum();
  for (const [k, v] of store.scan(...ALL_KEYS)) if (!StoreState.uncounted(k)) sum.add(k, v);
  return hex(sum.bytes());
}

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
  const pairs = [...h.sm.store.scan(...ALL_KEYS)].filter(([k]) => !StoreState.uncounted(k));
  const digestOf = (edit: (k: Uint8Array, v: Uint8Array, i: number) => Uint8Array | null) => {
    const sum = new DigestSum();
    pairs.forEach(([k, v], i) => { const e = edit(k, v, i); if (e !== null) sum.add(k, e); });
    return hex(sum.bytes());
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
  t.true(pairs.some(([k]) => k[0] === PREFIX.record) && pairs.some(([k]) => k[0] === PREFIX.node) && pairs.some(([k]) => k[0] === PREFIX.request));
  const store = new MemoryStore();
  VaultStateMachine.restore({ clusterId: CLUSTER, store }, base);
  const applied = store.get(metaKey("applied")) ?? new Uint8Array(8);
  store.put(metaKey("applied"), flipLast(applied));
  const forged = new VaultStateMachine({ clusterId: CLUSTER, store }).snapshot();
  t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, forged), { instanceOf: CorruptSnapshotError, message: /digest does not match/ });
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
