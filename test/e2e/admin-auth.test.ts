// What a certificate may do on the admin port, against a real 3-node cluster
// (real processes, mTLS, 127.0.0.1; a cluster of its own, so that its
// connections do not share the admin ports' per-address caps with
// admin-cli.test.ts): a node's certificate, which lies on that node's disk,
// reads the status and may add or promote only its own node; the bkv CLI
// run with a certificate the port refuses says so (exit 1), not "pass a
// token".
import test from "ava";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { run } from "../../client/cli/main.js";
import type { CliIo } from "../../client/cli/io.js";
import { AdminService } from "../../proto/gen/bkv/v1/admin_pb.js";
import { unaryClient } from "../../proto/rpc.js";
import { LocalCluster, reportLogsOnFailure } from "../../testkit/cluster.js";

reportLogsOnFailure(test);

let cluster: LocalCluster;

test.before(async () => {
  cluster = await LocalCluster.start();
  await cluster.leaderId();
});

test.after.always(async () => {
  await cluster?.close();
});

/** An admin client of node 1 with the certificate `name` of the cluster's certs dir. */
function adminAs(name: string) {
  const certs = cluster.certsDir;
  const creds = grpc.credentials.createSsl(readFileSync(join(certs, "ca.crt")), readFileSync(join(certs, `${name}.key`)), readFileSync(join(certs, `${name}.crt`)));
  return unaryClient(AdminService, cluster.node(1).admin, creds);
}

const deadline = () => ({ deadline: new Date(Date.now() + 5000) });

async function refusal(call: Promise<unknown>): Promise<grpc.ServiceError> {
  return call.then(() => { throw new Error("the call succeeded"); }, (e: grpc.ServiceError) => e);
}

test.serial("a node's certificate reads the status and adds or promotes only itself; removing, moving leadership and the rest need an operator", async (t) => {
  const { client: node2, channel } = adminAs("node-2");
  t.teardown(() => channel.close());
  t.is(Number((await node2.getClusterStatus({}, deadline())).nodeId), 1);
  const removal = await refusal(node2.removeNode({ requestId: new Uint8Array(16).fill(3), nodeId: 3n }, deadline()));
  t.is(removal.code, grpc.status.PERMISSION_DENIED);
  t.regex(removal.details, /a node certificate may call GetClusterStatus, AddLearner, PromoteLearner only \(RemoveNode needs an operator certificate\)/);
  const transfer = await refusal(node2.transferLeadership({ nodeId: 2n }, deadline()));
  t.is(transfer.code, grpc.status.PERMISSION_DENIED);
  const other = await refusal(node2.addLearner({ requestId: new Uint8Array(16).fill(4), nodeId: 7n, peerAddress: "127.0.0.1:1" }, deadline()));
  t.is(other.code, grpc.status.PERMISSION_DENIED);
  t.regex(other.details, /node 2's certificate may AddLearner node 2 only/);
  const { client: operator, channel: opChannel } = adminAs("operator");
  t.teardown(() => opChannel.close());
  const status = await operator.getClusterStatus({}, deadline());
  t.deepEqual(status.members.map((m) => Number(m.nodeId)).sort(), [1, 2, 3], "nothing was changed");
  t.regex(cluster.logOf(1), /"msg":"admin caller refused","node":1,[^\n]*"cn":"node-2"/);
});

test.serial("bkv admin with a certificate the port refuses says it is the certificate and exits 1", async (t) => {
  const certs = cluster.certsDir;
  execFileSync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(certs, "mallory.key"), "-out", join(certs, "mallory.csr"), "-subj", "/O=bkv/CN=mallory"], { stdio: "ignore" });
  writeFileSync(join(certs, "mallory.ext"), "extendedKeyUsage=clientAuth\n");
  execFileSync("openssl", ["x509", "-req", "-in", join(certs, "mallory.csr"), "-CA", join(certs, "ca.crt"), "-CAkey", join(certs, "ca.key"), "-CAcreateserial", "-out", join(certs, "mallory.crt"), "-days", "1", "-extfile", join(certs, "mallory.ext")], { stdio: "ignore" });
  let out = "";
  let err = "";
  const io: CliIo = {
    readSecrets: () => Promise.reject(new Error("no secrets in bkv admin")), stdout: (s) => (out += s), stderr: (s) => (err += s), stderrIsTTY: false,
    env: { BKV_ADMIN_CERTS: certs, BKV_CLUSTER: join(cluster.dir, "no-descriptor.json") },
  };
  const code = await run(["admin", "status", "--endpoints", cluster.node(1).admin, "--tls-cert", join(certs, "mallory.crt"), "--tls-key", join(certs, "mallory.key"), "--timeout", "10"], io);
  t.is(code, 1, err);
  t.regex(err, /bkv admin: refused by .*PERMISSION_DENIED: .*not CN "mallory"\n  the admin port admits an operator certificate/);
  t.false(err.includes("--token-file"));
  t.is(out, "");
});
