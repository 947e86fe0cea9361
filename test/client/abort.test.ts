// recover(), register(), verifyPassword(), checkPassword(), changePassword()
// and delete() with an AbortSignal (client/sdk/abort.ts): an abort before
// BeginRecovery (Register) was sent throws AbortError and nothing that counts
// or stores is ever sent; an abort after it throws AbortError saying so, no
// second attempt is begun, and a password change or deletion sends nothing
// that changes the record after the abort.
import test from "ava";
import { AbortError } from "../../client/sdk/index.js";
import { unavailableTimes, withCluster } from "./fake-cluster.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial("an already aborted signal: AbortError, sent false, and no call at all", async (t) => {
  await withCluster(async (cluster, client) => {
    const err = await t.throwsAsync(client.recover("alice", "pw", { signal: AbortSignal.abort() }), { instanceOf: AbortError });
    t.false(err.sent);
    t.is(err.name, "AbortError");
    t.is(err.code, "ABORTED");
    await t.throwsAsync(client.register("alice", "pw", { signal: AbortSignal.abort() }), { instanceOf: AbortError });
    t.is(cluster.calls.length, 0);
  });
});

test.serial("aborted while the record is read: AbortError at once, and no BeginRecovery is sent after", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("alice", "pw");
    for (const n of cluster.nodes) cluster.fault(n.id, unavailableTimes("GetRecordInfo", 8));
    const controller = new AbortController();
    const recovery = client.recover("alice", "pw", { signal: controller.signal });
    await sleep(20);
    const abortedAt = Date.now();
    controller.abort();
    const err = await t.throwsAsync(recovery, { instanceOf: AbortError });
    t.true(Date.now() - abortedAt < 500, "rejected at once, not after the reads (about 1.5 s of faults)");
    t.false(err.sent);
    t.regex(err.message, /before anything that counts an attempt/);
    await sleep(1_500); // the reads under way end (the faults run out) and reach the gate
    t.is(cluster.callsOf("BeginRecovery").length, 0);
    t.is(cluster.records.get("alice")?.attempts, 0);
  });
});

test.serial("aborted once BeginRecovery was sent: AbortError with sent true, one attempt counted, no second one", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("alice", "right");
    const controller = new AbortController();
    for (const n of cluster.nodes) {
      cluster.fault(n.id, (m) => {
        if (m === "BeginRecovery") controller.abort();
        return undefined;
      });
    }
    const err = await t.throwsAsync(client.recover("alice", "wrong", { signal: controller.signal }), { instanceOf: AbortError });
    t.true(err.sent);
    t.regex(err.message, /after BeginRecovery was sent/);
    await sleep(1_000);
    t.is(cluster.callsOf("BeginRecovery").length, 1);
    t.is(cluster.records.get("alice")?.attempts, 1, "the attempt begun counts (a wrong password: nothing confirms it)");
  });
});

test.serial("register() aborted while its record is built: no Register is sent", async (t) => {
  await withCluster(async (cluster, client) => {
    const controller = new AbortController();
    const registration = client.register("bob", "pw", { signal: controller.signal });
    controller.abort();
    const err = await t.throwsAsync(registration, { instanceOf: AbortError });
    t.false(err.sent);
    await sleep(500);
    t.is(cluster.callsOf("Register").length, 0);
    t.false(cluster.records.has("bob"));
  });
});

test.serial("every call that counts or changes takes a signal: already aborted, AbortError naming the call, and no call at all", async (t) => {
  await withCluster(async (cluster, client) => {
    const calls: Array<[string, (signal: AbortSignal) => Promise<unknown>]> = [
      ["password check", (signal) => client.verifyPassword("alice", "pw", { signal })],
      ["password check", (signal) => client.checkPassword("alice", "pw", { signal })],
      ["password change", (signal) => client.changePassword("alice", "pw", "new", { signal })],
      ["deletion", (signal) => client.delete("alice", "pw", { signal })],
    ];
    for (const [what, call] of calls) {
      const err = await t.throwsAsync(call(AbortSignal.abort()), { instanceOf: AbortError });
      t.false(err.sent);
      t.is(err.message, `the ${what} was aborted before anything that counts an attempt or stores a record was sent`);
    }
    t.is(cluster.calls.length, 0);
  });
});

/** `call` on alice's record (password "right"), its signal aborted as BeginRecovery reaches the nodes. */
async function abortedAtBegin(cluster: Parameters<Parameters<typeof withCluster>[0]>[0], call: (signal: AbortSignal) => Promise<unknown>) {
  const controller = new AbortController();
  for (const n of cluster.nodes) {
    cluster.fault(n.id, (m) => {
      if (m === "BeginRecovery") controller.abort();
      return undefined;
    });
  }
  return call(controller.signal);
}

test.serial("a password change or deletion aborted once BeginRecovery was sent changes nothing: no new record, no Delete", async (t) => {
  await withCluster(async (cluster, client) => {
    const key = await client.register("alice", "right");
    const registers = cluster.callsOf("Register").length;
    const change = await t.throwsAsync(abortedAtBegin(cluster, (signal) => client.changePassword("alice", "right", "new", { signal })), { instanceOf: AbortError });
    t.true(change.sent);
    t.regex(change.message, /^the password change was aborted after BeginRecovery was sent: .*; no new record is sent after the abort$/);
    const deletion = await t.throwsAsync(abortedAtBegin(cluster, (signal) => client.delete("alice", "right", { signal })), { instanceOf: AbortError });
    t.regex(deletion.message, /^the deletion was aborted after BeginRecovery was sent: .*; no Delete is sent after the abort$/);
    await sleep(1_500); // the recoveries under way end in the background and reach the gate
    for (const n of cluster.nodes) cluster.fault(n.id, () => undefined);
    t.is(cluster.callsOf("Register").length, registers, "no new record sent");
    t.is(cluster.callsOf("Delete").length, 0);
    t.deepEqual(await client.recover("alice", "right"), key, "the old password still opens the record");
  });
});
