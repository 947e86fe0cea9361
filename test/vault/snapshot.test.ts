import test from "ava";
import { sha256 } from "@noble/hashes/sha2.js";
import { UnsupportedVersionError } from "../../proto/crypto/index.js";
import { CorruptSnapshotError, VaultStateMachine } from "../../node/vault/index.js";
import {
  CLUSTER,
  Harness,
  NODES,
  announcement,
  beginCmd,
  blindedPoint,
  confirmCmd,
  deleteCmd,
  expectOk,
  hex,
  register,
  registerCmd,
  contentDigest,
} from "../../testkit/vault.js";
import type { Command } from "../../node/vault/index.js";
import { metaKey, recordKey } from "../../node/vault/keys.js";
import { judge } from "../../node/server/snapshot-attest.js";
import { editSnapshot } from "../../testkit/vault-store.js";

const alice = register("alice", { guessLimit: 3 });
const bob = register("bob", { guessLimit: 2 });
const zed = register("Zed ✓", { guessLimit: 2 });

/** A state with an active record with pending attempts, a locked record, a node and remembered requests. */
function populated(): { h: Harness; replay: Command } {
  const h = new Harness();
  h.apply({ kind: "announce", node: announcement(NODES[1] as (typeof NODES)[number]) });
  h.apply({ kind: "announce", node: announcement(NODES[0] as (typeof NODES)[number]) });
  for (const reg of [zed, bob, alice]) h.result(registerCmd(reg));
  const replay = beginCmd("alice", blindedPoint(5));
  h.result(replay);
  h.result(beginCmd("alice", blindedPoint(6)));
  for (let i = 0; i < 3; i++) h.result(beginCmd("bob")); // bob: 2 attempts, then locked
  return { h, replay };
}

function restored(h: Harness): Harness {
  const r = new Harness(VaultStateMachine.restore({ clusterId: CLUSTER }, h.sm.snapshot()));
  r.index = h.index;
  return r;
}

test("snapshot → restore gives the identical digest, state and views", (t) => {
  const { h } = populated();
  const r = restored(h);
  t.is(hex(r.sm.digest()), hex(h.sm.digest()));
  t.is(hex(r.sm.snapshot()), hex(h.sm.snapshot()));
  t.is(r.sm.appliedIndex, h.sm.appliedIndex);
  for (const user of ["alice", "bob", "Zed ✓"]) t.deepEqual(r.sm.getRecord(user), h.sm.getRecord(user), user);
  t.deepEqual(r.sm.nodes(), h.sm.nodes());
  t.is(r.sm.rememberedRequests, h.sm.rememberedRequests);
  t.true(r.sm.getRecord("bob")?.locked);
  t.deepEqual(r.sm.getRecord("bob")?.record.shares, []);
});

test("a restored state machine behaves identically afterwards, remembered request ids included", (t) => {
  const { h, replay } = populated();
  const r = restored(h);
  const b = r.sm.getRecord("alice")?.pending[1]?.attemptId ?? 0;
  const next: Command[] = [replay, beginCmd("alice"), confirmCmd(alice, b), beginCmd("bob"), deleteCmd(zed), registerCmd(register("carol"))];
  for (const c of next) t.deepEqual(r.apply(c), h.apply(c), c.kind);
  t.is(hex(r.sm.digest()), hex(h.sm.digest()));
  t.is(r.sm.getRecord("alice")?.attempts, 0);
});

test("the snapshot is canonical: insertion order of records and nodes does not matter", (t) => {
  const a = new Harness();
  const b = new Harness();
  for (const reg of [alice, bob, zed]) a.result(registerCmd(reg));
  for (const reg of [zed, alice, bob]) b.result(registerCmd(reg));
  for (const n of NODES) a.apply({ kind: "announce", node: announcement(n) });
  for (const n of [...NODES].reverse()) b.apply({ kind: "announce", node: announcement(n) });
  t.is(hex(contentDigest(a.sm)), hex(contentDigest(b.sm)));
  t.not(hex(a.sm.digest()), hex(b.sm.digest()), "the request-id tables differ (FIFO order is part of the state)");
});

test("the request-id capacity travels in the snapshot", (t) => {
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER, requestIdCapacity: 2 }));
  h.result(registerCmd(register("dora", { guessLimit: 9 })));
  const first = beginCmd("dora");
  h.result(first);
  h.result(beginCmd("dora"));
  const r = restored(h);
  const later = beginCmd("dora");
  h.result(later);
  r.result(later);
  t.is(r.sm.rememberedRequests, 2);
  t.is(hex(r.sm.digest()), hex(h.sm.digest()));
});

test("restore refuses every truncation with a clear error", (t) => {
  const snap = populated().h.sm.snapshot();
  for (let len = 0; len < snap.length; len += Math.max(1, Math.floor(snap.length / 97))) {
    const err = t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, snap.subarray(0, len)), { instanceOf: CorruptSnapshotError });
    t.regex(err?.message ?? "", /vault snapshot refused/);
  }
  t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, snap.subarray(0, snap.length - 1)), { instanceOf: CorruptSnapshotError });
  t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, Uint8Array.of(...snap, 0)), { instanceOf: CorruptSnapshotError });
});

test("restore refuses altered bytes, a bad magic, an unknown version and another cluster", (t) => {
  const snap = populated().h.sm.snapshot();
  for (let pos = 0; pos < snap.length; pos += 61) {
    const bad = snap.slice();
    bad[pos] = (bad[pos] ?? 0) ^ 0x10;
    t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, bad), { instanceOf: Error }, `flip at ${pos}`);
  }
  const v9 = resealed(snap, (b) => (b[4] = 9));
  t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, v9), { instanceOf: UnsupportedVersionError });
  const magic = snap.slice();
  magic[0] = 0x41;
  t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, magic), { instanceOf: CorruptSnapshotError, message: /bad magic/ });
  t.throws(() => VaultStateMachine.restore({ clusterId: "other" }, snap), { instanceOf: CorruptSnapshotError, message: /belongs to cluster/ });
});

/** A copy with `edit` applied and the checksum recomputed: only the semantic checks can refuse it. */
function resealed(snap: Uint8Array, edit: (body: Uint8Array) => void): Uint8Array {
  const body = snap.slice(0, snap.length - 32);
  edit(body);
  return Uint8Array.of(...body, ...sha256(body));
}

/**
 * What an honest follower (node 2, threshold 2) does with `snap` sent by node 1,
 * which vouches for it, while node 3 holds `honest`'s state: "corrupt: …"
 * (refused by the importer), or the attestation's verdict (judge).
 */
function installVerdict(snap: Uint8Array, honest: Harness): string {
  let got: VaultStateMachine;
  try {
    got = VaultStateMachine.restore({ clusterId: CLUSTER }, snap);
  } catch (err) {
    if (err instanceof CorruptSnapshotError) return `corrupt: ${err.message}`;
    throw err;
  }
  const candidate = { from: 1, index: got.appliedIndex, appliedIndex: got.appliedIndex, digest: got.digest(), members: [1, 2, 3] };
  const v = judge(candidate, 2, [{ id: 1, digest: got.digest() }, { id: 3, digest: honest.sm.digest() }], 2);
  return typeof v === "string" ? v : v.reason;
}

test("a forged snapshot whose checksum and stored digests are consistent is refused: by the importer's counts, else by the attestation (no honest node vouches)", (t) => {
  const h = new Harness();
  h.result(registerCmd(alice));
  h.result(beginCmd("alice"));
  const snap = h.sm.snapshot();
  t.is(installVerdict(snap, h), "admit", "the honest state is admitted");
  const value = h.sm.store.get(recordKey("alice"));
  if (value === undefined) return t.fail("no record");
  // Record value: state u8, attempts u8, u16 pending count, pending (u64 id, B 33), digest 32, u64 confirmed at, u32 len, body.
  t.is(value[1], 1, "attempts byte located");
  const digestAt = 4 + 8 + 33;
  const cases: [string, (b: Uint8Array) => void, RegExp][] = [
    ["attempts reset", (b) => (b[1] = 0), /^disagreement$/],
    ["attempts above the limit", (b) => (b[1] = 4), /^disagreement$/],
    ["locked with shares", (b) => (b[0] = 1), /^corrupt: .*locked records: the stream holds 1, its meta says 0/],
    ["unknown state", (b) => (b[0] = 7), /^disagreement$/],
    ["digest mismatch", (b) => (b[digestAt] = (b[digestAt] ?? 0) ^ 1), /^disagreement$/],
    ["pending attempt in the future", (b) => (b[4 + 7] = 200), /^disagreement$/],
    ["pending B not a point (read without decoding from the store)", (b) => (b[4 + 8] = 0x05), /^disagreement$/],
  ];
  for (const [what, edit, verdict] of cases) {
    const forged = editSnapshot(CLUSTER, snap, (s) => {
      const v = value.slice();
      edit(v);
      s.write(recordKey("alice"), v);
    });
    t.regex(installVerdict(forged, h), verdict, what);
  }
  const otherKey = editSnapshot(CLUSTER, snap, (s) => { s.write(recordKey("alice"), null); s.write(recordKey("mallory"), value); });
  t.is(installVerdict(otherKey, h), "disagreement", "a record under another user's key");
  const notUtf8 = resealed(snap, (b) => (b[4 + 1 + 2] = 0xff));
  t.regex(installVerdict(notUtf8, h), /^corrupt: .*belongs to cluster/);
  t.is(installVerdict(editSnapshot(CLUSTER, snap, () => undefined), h), "admit", "the forging tool alone changes nothing");
});

test("the importer refuses a counter that is not 8 bytes (the digest covers counters by value), and a state at applied index 0 that holds anything", (t) => {
  const h = new Harness();
  h.result(registerCmd(alice));
  const snap = h.sm.snapshot();
  const longCount = editSnapshot(CLUSTER, snap, (s) => s.store.put(metaKey("records"), Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 1, 0)));
  t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, longCount), { instanceOf: CorruptSnapshotError, message: /meta records holds 9 bytes, not a u64/ });
  const atZero = editSnapshot(CLUSTER, snap, (s) => s.setMetaU64("applied", (s.appliedIndex = 0)));
  t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, atZero), { instanceOf: CorruptSnapshotError, message: /applied index 0 .* holds records/ });
  const timeAtZero = editSnapshot(CLUSTER, new VaultStateMachine({ clusterId: CLUSTER }).snapshot(), (s) => s.setMetaU64("time", (s.time = 5)));
  t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, timeAtZero), { instanceOf: CorruptSnapshotError, message: /applied index 0/ });
});

test("an empty state snapshots and restores", (t) => {
  const sm = new VaultStateMachine({ clusterId: CLUSTER });
  const r = VaultStateMachine.restore({ clusterId: CLUSTER }, sm.snapshot());
  t.is(hex(r.digest()), hex(sm.digest()));
  t.is(r.appliedIndex, 0);
  expectOk(t, new Harness(r).result(registerCmd(alice)), "register");
});
