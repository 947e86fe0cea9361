// An app configured with another cluster's descriptor (another cluster id,
// or the keys of an earlier cluster at the same addresses): recover() and
// register() refuse with ClusterMismatchError before anything that counts
// an attempt or stores a record is sent. One node alone disowning the
// descriptor does not stop a recovery.
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { G, encodePoint, nodeDescriptorMessage, randomScalar, signMessage } from "../../proto/crypto/index.js";
import { type ClusterDescriptor, ClusterMismatchError, VaultClient } from "../../client/sdk/index.js";
import { EXIT, exitCodeFor } from "../../client/cli/main.js";
import * as sdkErrors from "../../client/sdk/errors.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { FAST, FakeCluster, fail } from "./fake-cluster.js";

const PASSWORD = "correct horse battery";

/** `d` for `clusterId`, the nodes `ids` with fresh keys (addresses and node ids unchanged), each of them signed for it. */
function rekeyed(d: ClusterDescriptor, clusterId: string, ids: readonly number[]): ClusterDescriptor {
  return {
    ...d, clusterId,
    nodes: d.nodes.map((n) => {
      if (!ids.includes(n.nodeId)) return n;
      const identity = randomScalar();
      const entry = {
        nodeId: n.nodeId, address: n.address,
        agreementPublicKey: encodePoint(G.multiply(randomScalar()), false),
        identityPublicKey: encodePoint(G.multiply(identity), false),
      };
      return { ...entry, signature: signMessage(identity, nodeDescriptorMessage({ clusterId, ...entry })) };
    }),
  };
}

/** A 3-node fake cluster (t = 2) where alice is registered, and a FAST client on `descriptor(cluster)`; closed after. */
async function withWrongDescriptor(descriptor: (c: FakeCluster) => ClusterDescriptor, body: (c: FakeCluster, client: VaultClient) => Promise<void>): Promise<void> {
  const cluster = await FakeCluster.start(3, 2, "cluster-a");
  const owner = new VaultClient(cluster.descriptor(), FAST);
  const client = new VaultClient(descriptor(cluster), FAST);
  try {
    await owner.register("alice", PASSWORD);
    await body(cluster, client);
  } finally {
    owner.close();
    client.close();
    cluster.stop();
  }
}

function assertNothingCounted(t: import("ava").ExecutionContext, cluster: FakeCluster): void {
  t.is(cluster.callsOf("BeginRecovery").length, 0, "no BeginRecovery was sent");
  t.is(cluster.records.get("alice")?.attempts, 0, "the attempt counter is unchanged");
}

test("another cluster's descriptor at the same addresses: recover() throws ClusterMismatchError naming both ids, nothing counted", async (t) => {
  await withWrongDescriptor((c) => rekeyed(c.descriptor(), "cluster-b", [1, 2, 3]), async (cluster, client) => {
    const readsBefore = cluster.callsOf("GetRecordInfo").length;
    const err = await t.throwsAsync(client.recover("alice", PASSWORD), { instanceOf: ClusterMismatchError });
    t.regex(err.message, /not the pinned cluster "cluster-b"/);
    t.regex(err.message, /node 1 \(127\.0\.0\.1:\d+\): cluster id "cluster-a" \(pinned: "cluster-b"\)/);
    t.deepEqual(err.nodes.map((n) => n.nodeId), [1, 2, 3]);
    t.false(err.message.includes(PASSWORD));
    t.is(exitCodeFor(err, sdkErrors), EXIT.DESCRIPTOR);
    assertNothingCounted(t, cluster);
    t.is(cluster.callsOf("GetRecordInfo").length, readsBefore, "the record was not even read");
  });
});

test("an earlier cluster's keys under the same cluster id: verifyPassword() throws ClusterMismatchError naming the identity keys, nothing counted", async (t) => {
  await withWrongDescriptor((c) => rekeyed(c.descriptor(), "cluster-a", [1, 2, 3]), async (cluster, client) => {
    const err = await t.throwsAsync(client.verifyPassword("alice", PASSWORD), { instanceOf: ClusterMismatchError });
    t.regex(err.message, /node 2 \(127\.0\.0\.1:\d+\): another identity key than the pinned one/);
    assertNothingCounted(t, cluster);
  });
});

test("register() with another cluster's descriptor throws ClusterMismatchError and stores nothing", async (t) => {
  await withWrongDescriptor((c) => rekeyed(c.descriptor(), "cluster-b", [1, 2, 3]), async (cluster, client) => {
    await t.throwsAsync(client.register("bob", PASSWORD), { instanceOf: ClusterMismatchError });
    t.is(cluster.callsOf("Register").length, 1, "only the owner's registration of alice");
    t.false(cluster.records.has("bob"));
  });
});

test("a majority disowning is enough: with one node down, another cluster's descriptor is still refused", async (t) => {
  await withWrongDescriptor((c) => rekeyed(c.descriptor(), "cluster-b", [1, 2, 3]), async (cluster, client) => {
    await cluster.stopNode(3);
    const err = await t.throwsAsync(client.recover("alice", PASSWORD), { instanceOf: ClusterMismatchError });
    t.deepEqual(err.nodes.map((n) => n.nodeId), [1, 2]);
    assertNothingCounted(t, cluster);
  });
});

test("one node alone disowning the descriptor does not stop a recovery", async (t) => {
  await withWrongDescriptor((c) => rekeyed(c.descriptor(), "cluster-a", [1]), async (cluster, client) => {
    const key = await client.recover("alice", PASSWORD);
    t.is(key.length, 32);
    t.is(cluster.callsOf("BeginRecovery").length, 1);
  });
});

test("a client asks the nodes once: the first round that confirms the descriptor holds for its life, and a round that could not tell is asked again", async (t) => {
  await withWrongDescriptor((c) => c.descriptor(), async (cluster, client) => {
    const silent = (m: string) => (m === "GetClusterDescriptor" ? fail(grpc.status.UNAVAILABLE, "down", ErrorReason.UNSPECIFIED) : undefined);
    cluster.fault(2, silent);
    cluster.fault(3, silent);
    await client.recover("alice", PASSWORD);
    const unconfirmed = cluster.callsOf("GetClusterDescriptor").length;
    cluster.fault(2, undefined);
    cluster.fault(3, undefined);
    await client.recover("alice", PASSWORD);
    const confirmed = cluster.callsOf("GetClusterDescriptor").length;
    t.true(confirmed > unconfirmed, "a round that could not tell (one node of three announced it) is asked again");
    await Promise.all([client.recover("alice", PASSWORD), client.recover("alice", PASSWORD), client.register("bob", PASSWORD)]);
    t.is(cluster.callsOf("GetClusterDescriptor").length, confirmed, "no round after one confirmed the descriptor");
  });
});
