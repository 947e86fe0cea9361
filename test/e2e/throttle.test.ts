// Attempt throttling on a real cluster (issue 13 item 3): with the default
// schedule, the fourth wrong attempt in a row is refused as THROTTLED with a
// retry-after, counts nothing, and stays refused after a leader change
// (the delay is in the replicated state, measured with leader-stamped time).
import test from "ava";
import { ThrottledError, VaultClient } from "../../client/sdk/index.js";
import { LocalCluster, reportLogsOnFailure } from "../../testkit/cluster.js";

reportLogsOnFailure(test);

test("the fourth wrong attempt is throttled with a retry-after, counts nothing, and stays throttled on a new leader", async (t) => {
  const cluster = await LocalCluster.start({ throttle: "default" });
  const client = new VaultClient(await cluster.descriptor(), { token: cluster.token, scrypt: { N: 1024, r: 8, p: 1 }, retry: { deadlineMs: 20_000 } });
  try {
    await client.register("tom", "right", { guessLimit: 10 });
    for (let i = 0; i < 3; i++) t.false((await client.checkPassword("tom", "wrong")).ok, `wrong attempt ${i + 1}`);
    const err = await t.throwsAsync(client.checkPassword("tom", "wrong"), { instanceOf: ThrottledError });
    t.true(err !== undefined && err.retryAfterMs > 0 && err.retryAfterMs <= 30_000, `retry after ${err?.retryAfterMs} ms`);
    t.regex(err?.message ?? "", /try again in \d+ s \(no attempt was counted; 7 attempts remaining\)/);
    t.is(err?.codeName, "RESOURCE_EXHAUSTED");

    const leader = await cluster.leaderId();
    await cluster.stop(leader);
    const next = await cluster.leaderId(60_000);
    t.not(next, leader);
    const again = await t.throwsAsync(client.checkPassword("tom", "right"), { instanceOf: ThrottledError }, "even the right password waits");
    t.true((again?.retryAfterMs ?? 0) > 0);
    const st = await client.status("tom");
    const views = st.nodes.filter((n) => n.record?.found === true).map((n) => n.record?.attemptsRemaining);
    t.true(views.length >= 2);
    t.deepEqual(views, views.map(() => 7), "the throttled attempts were not counted");
  } finally {
    client.close();
    await cluster.close();
  }
});
