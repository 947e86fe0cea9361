// One node's clock a day ahead (libfaketime), on a real 3-node cluster,
// and that node made leader. The applied state's time never goes back, so
// a leader that stamped its own clock would make every token fail on apply,
// on every node, for a day. The node reads the peers' clocks and stamps the
// cluster's time instead (node/server/cluster-clock.ts): the cluster keeps
// counting wrong guesses and releasing keys, and the state's time stays
// with the wall clock. Needs libfaketime (the `faketime` Debian package,
// which .ci/run installs); skipped, and said so, without it.
import test from "ava";
import { existsSync } from "node:fs";
import { VaultClient, WrongPasswordError } from "../../client/sdk/index.js";
import { E2E_CLIENT_OPTIONS, LocalCluster, reportLogsOnFailure, waitFor } from "../../testkit/cluster.js";
import { counterValue } from "../security/raw.js";

reportLogsOnFailure(test);

const FAKETIME_LIB = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"].find((f) => existsSync(f));
const clockTest = FAKETIME_LIB === undefined ? test.skip : test.serial;
const DAY_S = 86_400;

let cluster: LocalCluster | undefined;
let client: VaultClient | undefined;

test.after.always(async () => {
  client?.close();
  await cluster?.close();
});

/** A gauge's value on node `id` (NaN when absent). */
async function gauge(c: LocalCluster, id: number, name: string): Promise<number> {
  const line = (await c.metricsOf(id)).split("\n").find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(" ") + 1));
}

clockTest("a leader whose clock runs a day ahead stamps the cluster's time: tokens still pass on apply, wrong guesses count once on every node, keys are released", async (t) => {
  cluster = await LocalCluster.start({ throttle: "none" });
  client = new VaultClient(await cluster.descriptor(), { ...E2E_CLIENT_OPTIONS, token: cluster.token });
  const key = await client.register("alice", "right horse");

  await cluster.stop(1);
  cluster.restart(1, [], { LD_PRELOAD: FAKETIME_LIB!, FAKETIME: "+1d" });
  const offset = await waitFor(async () => {
    const v = await gauge(cluster!, 1, "bkv_clock_offset_seconds").catch(() => NaN);
    return Math.abs(v + DAY_S) <= 2 ? v : undefined;
  }, "node 1 reads the cluster's time a day behind its clock", 60_000);
  t.true(Math.abs(offset + DAY_S) <= 2, `node 1's correction: ${offset} s`);
  t.regex(cluster.logOf(1), /this node's clock differs from the cluster's/);

  const lead = await cluster.leaderId();
  if (lead !== 1) await cluster.admin(lead).transferLeadership({ nodeId: 1n });
  await waitFor(async () => ((await cluster!.leaderId()) === 1 ? true : undefined), "node 1 leads");

  const before = (await cluster.vault(2).getRecordInfo({ userId: "alice" }, { deadline: new Date(Date.now() + 5_000) })).attemptsRemaining;
  for (let i = 0; i < 2; i++) {
    const err = await client.recover("alice", "wrong horse").then(() => null, (e: unknown) => e);
    t.true(err instanceof WrongPasswordError, `a wrong guess under the fast leader is WrongPasswordError, not a refused token: ${String(err)}`);
  }
  t.is(await cluster.leaderId(), 1, "node 1 led throughout");
  const applied = Number((await cluster.status(1)).appliedIndex);
  for (const id of [1, 2, 3]) {
    await cluster.waitApplied(id, applied);
    const info = await cluster.vault(id).getRecordInfo({ userId: "alice", stale: true }, { deadline: new Date(Date.now() + 5_000) });
    t.is(info.attemptsRemaining, before - 2, `node ${id} counted both wrong guesses once`);
    const ahead = await gauge(cluster, id, "bkv_vault_time_ahead_seconds");
    t.true(ahead < 60 - (id === 1 ? DAY_S : 0), `node ${id}'s applied time is the wall clock's, not node 1's: ${ahead} s ahead of its own clock`);
  }
  t.deepEqual(await client.recover("alice", "right horse"), key, "the right password recovers the key under the fast leader");
  const refused = counterValue(await cluster.metricsOf(1), "bkv_grpc_requests_total", { code: "UNAUTHENTICATED" });
  t.is(refused, 0, "node 1's port refused no token");
});
