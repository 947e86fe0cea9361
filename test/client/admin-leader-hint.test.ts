// AdminClient follows a NOT_LEADER by the leader's node id first: an
// operator outside the cluster reaches each node through an address of its
// own (a port-forward, a load balancer), while the refusing node's hint
// names the leader's in-cluster admin address, which the operator's machine
// may not reach at all.
import test, { type ExecutionContext } from "ava";
import * as grpc from "@grpc/grpc-js";
import { type Socket, createServer } from "node:net";
import { create } from "@bufbuild/protobuf";
import { AdminService, GetClusterStatusResponseSchema, RotateIssuerKeysResponseSchema } from "../../proto/gen/bkv/v1/admin_pb.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { errorWithDetail, serviceDefinition } from "../../proto/rpc.js";
import { AdminClient } from "../../client/admin/client.js";
import { tempDir } from "../temp.js";
import { type FakeTls, makeFakeTls } from "./fake-cluster.js";

type Handler = (call: unknown, cb: grpc.sendUnaryData<unknown>) => void;

/** An admin port answering as node `id`, whose status names `leaderId` and the members' in-cluster admin addresses. */
async function fakeAdmin(t: ExecutionContext, tls: FakeTls, id: number, status: () => number, rotate: Handler): Promise<string> {
  const server = new grpc.Server();
  const members = [1, 2].map((n) => ({ nodeId: BigInt(n), adminAddress: `bkv-${n}.bkv.svc:7003` }));
  const handlers: Record<string, Handler> = {
    getClusterStatus: (_call, cb) => cb(null, create(GetClusterStatusResponseSchema, { nodeId: BigInt(id), leaderId: BigInt(status()), members })),
    rotateIssuerKeys: rotate,
  };
  server.addService(serviceDefinition(AdminService), handlers as unknown as grpc.UntypedServiceImplementation);
  const creds = grpc.ServerCredentials.createSsl(Buffer.from(tls.ca), [{ private_key: Buffer.from(tls.key), cert_chain: Buffer.from(tls.cert) }], false);
  const port = await new Promise<number>((res, rej) => server.bindAsync("127.0.0.1:0", creds, (e, p) => (e ? rej(e) : res(p))));
  t.teardown(() => server.forceShutdown());
  return `127.0.0.1:${port}`;
}

/** A TCP port that counts the connections it accepts and never speaks: the in-cluster address, as seen from outside. */
async function unreachable(t: ExecutionContext): Promise<{ address: string; dialled: () => number }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close(); });
  return { address: `127.0.0.1:${(server.address() as { port: number }).port}`, dialled: () => sockets.length };
}

test("a NOT_LEADER whose hint the operator cannot reach is followed to the address given for the leader's node id", async (t) => {
  const tls = await makeFakeTls(tempDir(t, "bkv-admin-hint-"));
  const inCluster = await unreachable(t);
  let rotations = 0;
  // Leadership just moved from node 1 to node 2: both statuses still name node 1.
  const follower = await fakeAdmin(t, tls, 1, () => 1, (_call, cb) => cb(errorWithDetail(grpc.status.UNAVAILABLE, "not the leader", {
    reason: ErrorReason.NOT_LEADER, leaderId: 2n, leaderAddress: inCluster.address,
  })));
  const leader = await fakeAdmin(t, tls, 2, () => 1, (_call, cb) => { rotations++; cb(null, create(RotateIssuerKeysResponseSchema, {})); });
  const client = new AdminClient({
    endpoints: [follower, leader], tls: { ca: Buffer.from(tls.ca), cert: Buffer.from(tls.cert), key: Buffer.from(tls.key) }, deadline: Date.now() + 20_000,
  });
  t.teardown(() => client.close());
  const { address } = await client.onLeader("rotateIssuerKeys", { requestId: new Uint8Array(16), signedKeySet: "x" });
  t.is(address, leader);
  t.is(rotations, 1);
  t.is(inCluster.dialled(), 0, "the refusing node's in-cluster hint was dialled, though the leader's node id had an address given");
});
