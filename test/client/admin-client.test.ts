// AdminClient's deadline: the whole budget of a `bkv admin` command. A node
// that accepts connections and never answers (a stopped process) holds each
// call until its deadline; no call outlives the client's, and no retry
// starts after it.
import test, { type ExecutionContext } from "ava";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { type Socket, createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { AdminClient } from "../../client/admin/client.js";
import { tempDir } from "../temp.js";

/** A TCP port that accepts and never speaks, and the operator-side PEM material of a fresh CA. */
async function blackhole(t: ExecutionContext) {
  const dir = tempDir(t, "bkv-admin-client-");
  await promisify(execFile)("bash", [join(process.cwd(), "deploy/certs/make-certs.sh"), dir, "1"]);
  const pem = (f: string) => readFileSync(join(dir, f));
  const sockets: Socket[] = [];
  const server = createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => { for (const s of sockets) s.destroy(); server.close(); });
  const address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return { address, tls: { ca: pem("ca.crt"), cert: pem("node-1.crt"), key: pem("node-1.key") } };
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
