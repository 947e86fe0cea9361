// GetClusterStatus's state digest on a real 3-node cluster: every node of a
// converged cluster reports the same digest at the same index, including a
// node that caught up by installing the leader's snapshot.
import test from "ava";
import { VaultClient } from "../../client/sdk/index.js";
import { LocalCluster, waitFor, reportLogsOnFailure } from "../../testkit/cluster.js";

reportLogsOnFailure(test);

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

test("all nodes of a converged cluster report the same state digest, one of them restored from a snapshot", async (t) => {
  // snapshotInterval 2 keeps a 1-entry tail: a node that misses 3 entries needs the snapshot.
  const cluster = await LocalCluster.start({ snapshotInterval: 2 });
  const client = new VaultClient(await cluster.descriptor(), { token: cluster.token, scrypt: { N: 1024, r: 8, p: 1 }, retry: { deadlineMs: 20_000 } });
  try {
    await client.register("alice", "right");
    await cluster.stop(3);
    await client.recover("alice", "right");
    await client.recover("alice", "right");
    cluster.restart(3);
    const ids = cluster.nodes.map((n) => n.id);
    const statuses = await waitFor(async () => {
      const sts = await Promise.all(ids.map((id) => cluster.admin(id).getClusterStatus({ includeStateDigest: true })));
      return new Set(sts.map((s) => s.stateDigestIndex)).size === 1 ? sts : undefined;
    }, "every node at the same applied index", 60_000);
    for (const s of statuses) {
      t.is(s.stateDigest.length, 32, `node ${s.nodeId}`);
      t.is(s.stateDigestIndex, s.appliedIndex, `node ${s.nodeId}: the digest is of the applied state`);
    }
    t.deepEqual(statuses.map((s) => hex(s.stateDigest)), statuses.map(() => hex(statuses[0]!.stateDigest)));
    t.regex(cluster.logOf(3), /restored snapshot/, "node 3 caught up from the leader's snapshot");
    const plain = await cluster.admin(1).getClusterStatus({});
    t.deepEqual([plain.stateDigest.length, plain.stateDigestIndex], [0, 0n], "no digest unless asked for");
  } finally {
    client.close();
    await cluster.close();
  }
});
