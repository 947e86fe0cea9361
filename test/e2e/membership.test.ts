// Membership through the admin API on real processes: a fourth node joins as
// a learner, catches up from the leader's snapshot, is promoted, announces
// itself (with its mTLS certificate: the cluster CA is in the replicated state
// since the bootstrap, so only a certified announcement puts node 4 in the
// descriptor), holds a share of a new record, and is removed again. Retries
// of changes already made, on another leader, answer already_in_effect.
import test, { type ExecutionContext } from "ava";
import { parseAuditLine, verifyAuditChain } from "../../proto/audit.js";
import { randomBytes } from "node:crypto";
import { VaultClient, type VaultClientOptions } from "../../client/sdk/index.js";
import { LocalCluster, waitFor, reportLogsOnFailure } from "../../testkit/cluster.js";

reportLogsOnFailure(test);

const OPTS: VaultClientOptions = { scrypt: { N: 1024, r: 8, p: 1 }, retry: { deadlineMs: 20_000 } };
const rid = () => new Uint8Array(randomBytes(16));

let cluster: LocalCluster;

test.before(async () => {
  cluster = await LocalCluster.start({ snapshotInterval: 20 });
});

test.after.always(async () => {
  await cluster?.close();
});

/**
 * TakeSnapshot on every voter once each applied what the leader has, and
 * returns the lowest snapshot index: the snapshot a new node is sent is at
 * least that, whichever voter leads then. One leader's snapshot would not
 * do: under load an election came between it and AddLearner, and the new
 * leader sent its older snapshot (a run under load failed so).
 */
async function snapshotEveryVoter(t: ExecutionContext): Promise<bigint> {
  const applied = Number((await cluster.status(await cluster.leaderId())).appliedIndex);
  let lowest: bigint | undefined;
  for (const id of [1, 2, 3]) {
    await cluster.waitApplied(id, applied);
    const snap = await cluster.admin(id).takeSnapshot({});
    t.true(snap.index >= BigInt(applied) && snap.sizeBytes > 0n, `TakeSnapshot on node ${id} snapshots the applied state`);
    t.is((await cluster.status(id)).snapshotIndex, snap.index);
    if (lowest === undefined || snap.index < lowest) lowest = snap.index;
  }
  return lowest!;
}

test.serial("a node added as a learner catches up, is promoted, serves a share, and is removed", async (t) => {
  const old = new VaultClient(await cluster.descriptor(), { ...OPTS, token: cluster.token });
  const oldKey = await old.register("judy", "pw");
  old.close();
  const lead = await cluster.leaderId();
  const snapIndex = await snapshotEveryVoter(t);
  const n4 = await cluster.addNode(4);
  const addId = rid();
  // Leader-bound calls follow the leader (onLeader): under load an election may come between two of them.
  t.like(await cluster.onLeader((a) => a.addLearner({ requestId: addId, nodeId: 4n, peerAddress: n4.peer })), { alreadyInEffect: false });
  const applied = Number((await cluster.status(lead)).appliedIndex);
  await cluster.waitApplied(4, applied, 60_000);
  await cluster.onLeader((a) => a.promoteLearner({ requestId: rid(), nodeId: 4n }));
  // Retries whose first attempt committed, sent to a new leader (its request table never saw them): done, nothing proposed.
  const now = await cluster.leaderId();
  const next = [1, 2, 3].find((id) => id !== now)!;
  t.is(Number((await cluster.admin(now).transferLeadership({ nodeId: BigInt(next) })).leaderId), next);
  t.like(await cluster.admin(next).addLearner({ requestId: addId, nodeId: 4n, peerAddress: n4.peer }), { index: 0n, alreadyInEffect: true });
  t.like(await cluster.admin(next).promoteLearner({ requestId: rid(), nodeId: 4n }), { index: 0n, alreadyInEffect: true });
  await t.throwsAsync(cluster.admin(next).addLearner({ requestId: rid(), nodeId: 4n, peerAddress: "127.0.0.1:1" }), { message: /node 4 is already a member, at peer address/ });
  t.is(Number((await cluster.admin(next).transferLeadership({ nodeId: BigInt(lead) })).leaderId), lead);
  const st = await cluster.status(lead);
  t.deepEqual(st.members.filter((m) => m.kind === 1).map((m) => Number(m.nodeId)).sort(), [1, 2, 3, 4]);
  const d = await waitFor(async () => {
    const desc = await cluster.descriptor();
    return desc.nodes.length === 4 ? desc : undefined;
  }, "node 4 in the descriptor", 30_000);
  const client = new VaultClient(d, { ...OPTS, token: cluster.token });
  const key = await client.register("kim", "pw");
  const info = await cluster.vault(4).getRecordInfo({ userId: "kim" });
  t.true(info.publicShares.some((s) => Number(s.nodeId) === 4));
  t.deepEqual(await client.recover("kim", "pw"), key);
  t.deepEqual(await client.recover("judy", "pw"), oldKey, "a record from before the change still recovers");
  client.close();
  t.like(await cluster.onLeader((a) => a.removeNode({ requestId: rid(), nodeId: 4n })), { alreadyInEffect: false });
  t.like(await cluster.onLeader((a) => a.removeNode({ requestId: rid(), nodeId: 4n })), { index: 0n, alreadyInEffect: true }, "announced once, no longer a member");
  const after = await cluster.status(lead);
  t.false(after.members.some((m) => Number(m.nodeId) === 4));
  // Audit: node 4 caught up by snapshot, so its chain starts a segment there; the others logged the membership changes.
  const lines4 = cluster.auditOf(4).trim().split("\n").map(parseAuditLine);
  t.like(lines4[0], { kind: "segment", from: "snapshot" });
  t.true(Number(lines4[0]?.index) >= Number(snapIndex), `node 4's chain starts at ${lines4[0]?.index}, before the voters' snapshots (${snapIndex})`);
  t.true(verifyAuditChain(cluster.auditOf(4)).ok);
  const changes = () => cluster.auditOf(lead).trim().split("\n").map(parseAuditLine).filter((l) => l.kind === "membership" && l.node === 4).map((l) => l.change);
  t.deepEqual(changes(), ["AddLearner", "PromoteLearner", "RemoveNode"]);
});

test.serial("TransferLeadership answers once another voter leads, and names it", async (t) => {
  const lead = await cluster.leaderId();
  const to = [1, 2, 3].find((id) => id !== lead) ?? 1;
  const res = await cluster.admin(lead).transferLeadership({ nodeId: BigInt(to) });
  t.is(Number(res.leaderId), to, "the answer names the new leader");
  const st = await cluster.status(to);
  t.is(Number(st.leaderId), to);
  t.true(st.term >= res.term);
});
