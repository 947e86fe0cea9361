// The state digest (node/vault/digest.ts, docs/vault.md §4): equal for equal
// states however they were reached, different for any difference.
import test from "ava";
import { type Command, type NodeAnnouncement, VaultStateMachine } from "../../node/vault/index.js";
import { type VaultState, decodeSnapshot, encodeSnapshot } from "../../node/vault/snapshot.js";
import { stateDigest } from "../../node/vault/digest.js";
import { type RequestEntry, RequestTable } from "../../node/vault/dedupe.js";
import type { StoredRecord } from "../../node/vault/records.js";
import { CLUSTER_CA } from "./certs.js";
import { CLUSTER, Harness, NODES, announcement, beginCmd, blindedPoint, deleteCmd, hex, register, registerCmd } from "../../testkit/vault.js";

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

test("a node that applied the log and one that restored a snapshot midway have the same digest", (t) => {
  const cmds = log();
  const applied = new Harness();
  const donor = new Harness();
  for (const c of cmds.slice(0, 8)) donor.apply(c);
  const restored = new Harness(VaultStateMachine.restore({ clusterId: CLUSTER }, donor.sm.snapshot()));
  restored.index = donor.index;
  for (const c of cmds) applied.apply(c);
  for (const c of cmds.slice(8)) restored.apply(c);
  t.is(restored.sm.appliedIndex, applied.sm.appliedIndex);
  t.is(hex(restored.sm.digest()), hex(applied.sm.digest()));
  // and both equal the checksum that ends the snapshot
  t.is(hex(applied.sm.digest()), hex(applied.sm.snapshot().subarray(-32)));
});

test("the digest does not depend on the insertion order of records and nodes", (t) => {
  const s = decodeSnapshot(CLUSTER, replay(log()).sm.snapshot());
  const reversed: VaultState = { ...s, records: new Map([...s.records].reverse()), nodes: new Map([...s.nodes].reverse()) };
  t.is(hex(stateDigest(reversed)), hex(stateDigest(s)));
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

test("a change to any part of the state changes the digest", (t) => {
  const base = encodeSnapshot(decodeSnapshot(CLUSTER, replay(log()).sm.snapshot()));
  const fresh = () => decodeSnapshot(CLUSTER, base);
  const mutations: Record<string, (s: VaultState) => VaultState> = {
    "applied index": (s) => ({ ...s, appliedIndex: s.appliedIndex + 1 }),
    "cluster id": (s) => ({ ...s, clusterId: "other-cluster" }),
    "request-id capacity": (s) => ({ ...s, requests: copyTable(s.requests, s.requests.capacity + 1) }),
    "a record's attempts": (s) => withRecord(s, "alice", (r) => ({ ...r, attempts: r.attempts + 1 })),
    "a record's pending attempt id": (s) => withRecord(s, "alice", (r) => ({ ...r, pending: r.pending.map((p, i) => (i === 0 ? { ...p, attemptId: p.attemptId - 1 } : p)) })),
    "a pending B": (s) => withRecord(s, "alice", (r) => ({ ...r, pending: r.pending.slice(0, 1).concat([{ ...r.pending[1]!, blinded: blindedPoint(99) }]) })),
    "a dropped pending attempt": (s) => withRecord(s, "alice", (r) => ({ ...r, pending: r.pending.slice(1) })),
    "a record's lock": (s) => withRecord(s, "bob", (r) => ({ ...r, locked: false })),
    "a record digest": (s) => withRecord(s, "alice", (r) => ({ ...r, digest: flip(r.digest) })),
    "a record body": (s) => withRecord(s, "alice", (r) => ({ ...r, encoded: flip(r.encoded!) })),
    "a locked record's ciphertext": (s) => withRecord(s, "bob", (r) => ({ ...r, record: { ...r.record, ciphertext: flip(r.record.ciphertext) } })),
    "a removed record": (s) => ({ ...s, records: new Map([...s.records].filter(([u]) => u !== "Zed ✓")) }),
    "a node's address": (s) => withNode(s, (n) => ({ ...n, clientAddress: "127.0.0.1:9999" })),
    "a node's identity key": (s) => withNode(s, (n) => ({ ...n, identityPublicKey: flip(n.identityPublicKey) })),
    "a node's signature": (s) => withNode(s, (n) => ({ ...n, signature: flip(n.signature) })),
    "a removed node": (s) => ({ ...s, nodes: new Map([...s.nodes].slice(1)) }),
    "a cluster CA": (s) => ({ ...s, clusterCa: CLUSTER_CA.ca }),
    "a node's certificate": (s) => withNode(s, (n) => ({ ...n, certified: { certificate: CLUSTER_CA.ca, signature: Uint8Array.of(1) } })),
    "a request id": (s) => withEntries(s, (es) => es.map((e, i) => (i === 2 ? { ...e, requestId: flip(e.requestId) } : e))),
    "a fingerprint": (s) => withEntries(s, (es) => es.map((e, i) => (i === 2 ? { ...e, fingerprint: flip(e.fingerprint) } : e))),
    "an outcome": (s) => withEntries(s, (es) => es.map((e, i) => (i === 2 ? { ...e, outcome: flip(e.outcome) } : e))),
    "a forgotten request": (s) => withEntries(s, (es) => es.slice(1)),
    "the request order": (s) => withEntries(s, (es) => [es[1]!, es[0]!, ...es.slice(2)]),
  };
  const unchanged = hex(stateDigest(fresh()));
  const digests = new Map<string, string>([["unchanged", unchanged]]);
  for (const [what, mutate] of Object.entries(mutations)) {
    const d = hex(stateDigest(mutate(fresh())));
    const same = [...digests].find(([, x]) => x === d);
    t.is(same, undefined, `${what} gives the digest of ${same?.[0] ?? ""}`);
    digests.set(what, d);
  }
  t.is(hex(stateDigest(fresh())), unchanged, "the base state is not mutated by the cases");
});

test("the digest is cached per applied index and handed out as a copy", (t) => {
  const h = replay(log());
  const d = h.sm.digest();
  d.fill(0);
  t.not(hex(h.sm.digest()), hex(d));
  t.is(hex(h.sm.digest()), hex(stateDigest(decodeSnapshot(CLUSTER, h.sm.snapshot()))));
  h.apply(beginCmd("alice", blindedPoint(7)));
  t.is(hex(h.sm.digest()), hex(h.sm.snapshot().subarray(-32)), "recomputed after an apply");
});

function replay(cmds: readonly Command[]): Harness {
  const h = new Harness();
  for (const c of cmds) h.apply(c);
  return h;
}

function flip(b: Uint8Array): Uint8Array {
  const out = b.slice();
  out[0] = (out[0] ?? 0) ^ 0x80;
  return out;
}

function withRecord(s: VaultState, user: string, f: (r: StoredRecord) => StoredRecord): VaultState {
  const r = s.records.get(user);
  if (r === undefined) throw new Error(`no record ${user}`);
  return { ...s, records: new Map(s.records).set(user, f(r)) };
}

function withNode(s: VaultState, f: (n: NodeAnnouncement) => NodeAnnouncement): VaultState {
  const [id, n] = [...s.nodes][0]!;
  return { ...s, nodes: new Map(s.nodes).set(id, f(n)) };
}

function withEntries(s: VaultState, f: (es: RequestEntry[]) => RequestEntry[]): VaultState {
  const t = new RequestTable(s.requests.capacity);
  for (const e of f([...s.requests.list()])) t.add(e);
  return { ...s, requests: t };
}

function copyTable(table: RequestTable, capacity: number): RequestTable {
  const t = new RequestTable(capacity);
  for (const e of table.list()) t.add(e);
  return t;
}
