// AdminClient's deadline: the whole budget of a `bkv admin` command. A node
// that accepts connections and never answers (a stopped process) holds each
// call until its deadline; no call outlives the client's, and no retry
// starts after it.
import test, { type ExecutionContext } from "ava";
import { type Socket, createServer } from "node:net";
import { AdminClient } from "../../client/admin/client.js";
import { tempDir } from "../temp.js";
import { makeFakeTls } from "./fake-cluster.js";

/** A TCP port that accepts and never speaks, and client TLS material of a fresh CA (node 1's certificate stands in for an operator's). */
async function blackhole(t: ExecutionContext) {
  const pem = await makeFakeTls(tempDir(t, "bkv-admin-client-"));
  const sockets: Socket[] = [];
  const server = createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close(); });
  const address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return { address, tls: { ca: Buffer.from(pem.ca), cert: Buffer.from(pem.cert), key: Buffer.from(pem.key) } };
}

test("a call ends by the client's deadline, not its own longer timeout", async (t) => {
  const { address, tls } = await blackhole(t);
  const client = new AdminClient({ endpoints: [address], tls, deadline: Date.now() + 500 });
  t.teardown(() => client.close());
  const t0 = performance.now();
  await t.throwsAsync(client.call(address, "getClusterStatus", {}, 10_000));
  const ms = performance.now() - t0;
  t.true(ms < 5_000, `ended after ${ms.toFixed(0)} ms: before, the call's own 10 s`);
});

test("finding the leader stops retrying at the client's deadline", async (t) => {
  const { address, tls } = await blackhole(t);
  const client = new AdminClient({ endpoints: [address], tls, deadline: Date.now() + 500 });
  t.teardown(() => client.close());
  const t0 = performance.now();
  await t.throwsAsync(client.leaderAddress(), { message: /find the leader/ });
  const ms = performance.now() - t0;
  t.true(ms < 5_000, `gave up after ${ms.toFixed(0)} ms: before, each round's 3 s status calls until the 30 s retry deadline`);
});
