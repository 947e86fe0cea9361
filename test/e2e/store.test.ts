// The vault store on a real 3-node cluster (issue 12): a new node with an
// empty data dir catches up from a snapshot streamed over FetchSnapshot (the
// Raft snapshot message carries only the store reference) and reaches the
// leader's state digest; a restarted node resumes from its store at the
// applied index it stopped at, without restoring a snapshot.
import { randomBytes } from "node:crypto";
import test from "ava";
import { VaultClient } from "../../client/sdk/index.js";
import { E2E_CLIENT_OPTIONS, LocalCluster, waitFor, reportLogsOnFailure } from "../../testkit/cluster.js";

reportLogsOnFailure(test);

const RECORDS = Number(process.env.BKV_STORE_E2E_RECORDS ?? 2000);
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const count = (text: string, needle: string): number => text.split(needle).length - 1;

/** Registers RECORDS users, 64 in flight (the SDK retries through leader changes). */
async function load(cluster: LocalCluster): Promise<void> {
  const client = new VaultClient(await cluster.descriptor(), { ...E2E_CLIENT_OPTIONS, token: cluster.token });
  try {
    for (let i = 0; i < RECORDS; i += 64) {
      await Promise.all(Array.from({ length: Math.min(64, RECORDS - i) }, (_, k) => client.register(`u${i + k}`, "pw", { guessLimit: 10 })));
    }
  } finally {
    client.close();
  }
}

/** Waits until every running node reports the same applied index and state digest; returns them. */
async function converged(cluster: LocalCluster, ids: readonly number[]): Promise<{ applied: bigint; digest: string }> {
  return waitFor(async () => {
    const sts = await Promise.all(ids.map((id) => cluster.admin(id).getClusterStatus({ includeStateDigest: true })));
    const digests = new Set(sts.map((s) => hex(s.stateDigest)));
    const applied = new Set(sts.map((s) => s.stateDigestIndex));
    return digests.size === 1 && applied.size === 1 ? { applied: sts[0]!.stateDigestIndex, digest: hex(sts[0]!.stateDigest) } : undefined;
  }, "every node at the same applied index and digest", 120_000);
}

const rid = (): Uint8Array => new Uint8Array(randomBytes(16));

test.serial("a new node with an empty data dir catches up from a streamed store snapshot; a restarted node resumes from its store", async (t) => {
  t.timeout(10 * 60_000); // loading 2,000 records takes minutes on a loaded machine
  const cluster = await LocalCluster.start({ snapshotInterval: 200 });
  try {
    await load(cluster);
    const lead = await cluster.leaderId();
    const before = await converged(cluster, [1, 2, 3]);
    t.true(Number((await cluster.status(lead)).snapshotIndex) > 1, "the leader took a local snapshot and compacted its log");

    // A learner with an empty data dir: the leader's log is compacted, so only a snapshot catches it up.
    const n4 = await cluster.addNode(4);
    await cluster.admin(lead).addLearner({ requestId: rid(), nodeId: 4n, peerAddress: n4.peer });
    const after = await converged(cluster, [1, 2, 3, 4]);
    t.true(after.applied >= before.applied);
    const log = cluster.logOf(4);
    t.regex(log, /"msg":"staged a snapshot"/, "the state came over FetchSnapshot");
    t.regex(log, /"msg":"restored snapshot"/);

    // A clean restart: the store opens at the index the node stopped at; no snapshot is restored.
    const restarted = [1, 2, 3].find((id) => id !== lead)!;
    const restoresBefore = count(cluster.logOf(restarted), '"msg":"restored snapshot"');
    await cluster.stop(restarted);
    const appliedBefore = Number(/"msg":"node stopped"[^\n]*"applied":(\d+)/.exec(cluster.logOf(restarted))?.[1]);
    cluster.restart(restarted);
    const opened = await waitFor(() => /"msg":"vault store opened"[^\n]*"applied":(\d+)/.exec(cluster.logOf(restarted).split('"msg":"node stopped"').at(-1) ?? "")?.[1], "the restarted node to open its store", 60_000);
    t.is(Number(opened), appliedBefore, "the store holds exactly what was applied when the node stopped");
    t.true(appliedBefore > RECORDS, "the node had applied the load");
    await converged(cluster, [1, 2, 3, 4]);
    t.is(count(cluster.logOf(restarted), '"msg":"restored snapshot"'), restoresBefore, "a restart restores no snapshot");
  } finally {
    await cluster.close();
  }
});
