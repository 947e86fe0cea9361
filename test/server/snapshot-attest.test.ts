// The attested install (node/server/snapshot-attest.ts): a snapshot's state
// is installed only when `threshold` other nodes report the same digest at
// its applied index; a node that reports another digest blocks it (and is
// named in an error log); the sender counts, this node does not.
import test from "ava";
import { type AttestOptions, type Candidate, type RefusalReason, SnapshotRefusedError, attestSnapshot } from "../../node/server/snapshot-attest.js";
import { jsonLogger } from "../../node/server/log.js";

const D = new Uint8Array(32).fill(1);
const OTHER = new Uint8Array(32).fill(2);

/** Options whose peers answer from `answers` (undefined: does not hold the index; "down": unreachable). */
function rig(answers: Record<number, Uint8Array | undefined | "down">, threshold = 2) {
  const lines: string[] = [];
  const refused: RefusalReason[] = [];
  const asked: Array<[number, number]> = [];
  const o: AttestOptions = {
    selfId: 1, threshold, log: jsonLogger("info", {}, () => ({}), (l) => lines.push(l)),
    ask: (id, index) => {
      asked.push([id, index]);
      const a = answers[id];
      return a === "down" ? Promise.reject(new Error("unreachable")) : Promise.resolve(a ?? null);
    },
    refused: (r) => refused.push(r), retryDelaysMs: [1, 1],
  };
  return { o, lines, refused, asked };
}

const candidate = (over: Partial<Candidate> = {}): Candidate => ({ from: 3, index: 40, appliedIndex: 40, digest: D, members: [1, 2, 3], ...over });

test("t other nodes vouching for the digest at the applied index admit the state; the sender may be one of them", async (t) => {
  const r = rig({ 2: D, 3: D });
  await t.notThrowsAsync(attestSnapshot(r.o, candidate()));
  t.deepEqual(r.asked.sort(), [[2, 40], [3, 40]], "every member but this node, at the state's applied index");
  t.deepEqual(r.refused, []);
});

test("too few vouching nodes (not applied yet, evicted, down) refuse the state; it installs once they vouch", async (t) => {
  for (const answers of [{ 2: undefined, 3: D }, { 2: "down" as const, 3: D }, { 3: D }]) {
    const r = rig(answers);
    const err = await t.throwsAsync(attestSnapshot(r.o, candidate()), { instanceOf: SnapshotRefusedError, message: /1 of the 2 nodes needed/ });
    t.is(err?.reason, "unattested");
    t.deepEqual(r.refused, ["unattested"]);
  }
  await t.notThrowsAsync(attestSnapshot(rig({ 2: D, 3: D }).o, candidate()));
});

test("a node that has not applied the index yet is asked again, and vouches once it has", async (t) => {
  const r = rig({ 3: D });
  let asks = 0;
  const late = (id: number, index: number): Promise<Uint8Array | null> => (id === 2 ? Promise.resolve(++asks < 3 ? null : D) : r.o.ask(id, index));
  await t.notThrowsAsync(attestSnapshot({ ...r.o, ask: late }, candidate()));
  t.is(asks, 3);
});

test("this node never vouches for itself, and a member listed twice counts once", async (t) => {
  const r = rig({ 1: D, 3: D });
  await t.throwsAsync(attestSnapshot(r.o, candidate({ members: [1, 1, 3, 3] })), { instanceOf: SnapshotRefusedError });
  t.deepEqual(r.asked, [[3, 40]], "asked once: it answered");
});

test("a node reporting another digest blocks the install and is named in an error log (without digest bytes)", async (t) => {
  const r = rig({ 2: OTHER, 3: D, 4: D }, 2);
  const err = await t.throwsAsync(attestSnapshot(r.o, candidate({ members: [1, 2, 3, 4] })), { instanceOf: SnapshotRefusedError, message: /nodes 2 report another state digest at index 40/ });
  t.is(err?.reason, "disagreement");
  const line = JSON.parse(r.lines.find((l) => l.includes("another state digest")) ?? "{}") as Record<string, unknown>;
  t.is(line.level, "error");
  t.deepEqual(line.disagreeing, [2]);
  t.deepEqual(line.vouching, [3, 4]);
  t.false(r.lines.some((l) => l.includes(Buffer.from(D).toString("hex")) || l.includes(Buffer.from(OTHER).toString("hex"))));
});

test("a state older than its snapshot index is refused without asking (it would skip the entries between)", async (t) => {
  const r = rig({ 2: D, 3: D });
  const err = await t.throwsAsync(attestSnapshot(r.o, candidate({ appliedIndex: 39 })), { instanceOf: SnapshotRefusedError });
  t.is(err?.reason, "index");
  t.deepEqual(r.asked, []);
});

test("the bootstrap's new state (applied 0 at snapshot index 1) is vouched for like any other: its meta (CA, issuers, throttle) could be a rogue's", async (t) => {
  const vouched = rig({ 2: D, 3: D });
  await t.notThrowsAsync(attestSnapshot(vouched.o, candidate({ index: 1, appliedIndex: 0 })));
  t.true(vouched.asked.length > 0);
  const forgotten = rig({});
  const err = await t.throwsAsync(attestSnapshot(forgotten.o, candidate({ index: 1, appliedIndex: 0 })), { instanceOf: SnapshotRefusedError });
  t.is(err?.reason, "unattested");
  const other = rig({ 2: OTHER, 3: D });
  t.is((await t.throwsAsync(attestSnapshot(other.o, candidate({ index: 1, appliedIndex: 0 })), { instanceOf: SnapshotRefusedError }))?.reason, "disagreement");
  t.is((await t.throwsAsync(attestSnapshot(rig({ 2: D, 3: D }).o, candidate({ index: 9, appliedIndex: 0 })), { instanceOf: SnapshotRefusedError }))?.reason, "index");
});

test("a state that would take this node's vault back is refused as a rollback before any node is asked, and logged as an error", async (t) => {
  const r = rig({ 2: D, 3: D });
  const back = () => Promise.resolve('the record of "alice" counts 0 attempts, not 2');
  const err = await t.throwsAsync(attestSnapshot(r.o, candidate({ rollback: back })), { instanceOf: SnapshotRefusedError, message: /would take this node's vault back: the record of "alice" counts 0 attempts, not 2/ });
  t.is(err?.reason, "rollback");
  t.deepEqual(r.refused, ["rollback"]);
  t.deepEqual(r.asked, [], "vouching cannot make up for it");
  const line = JSON.parse(r.lines.find((l) => l.includes("take this node's vault back")) ?? "{}") as Record<string, unknown>;
  t.is(line.level, "error");
  await t.notThrowsAsync(attestSnapshot(rig({ 2: D, 3: D }).o, candidate({ rollback: () => Promise.resolve(null) })), "no rollback: attested as before");
});
