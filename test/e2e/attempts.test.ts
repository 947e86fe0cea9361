// Exact attempt accounting on one real 3-node cluster (issue 9 items 2, 3, 5;
// issue 10 defect 3): a client that read a deleted-and-re-registered record
// is refused RECORD_CHANGED and its retry opens the new record; reads are
// linearizable unless asked stale; concurrent recoveries of one record both
// return the key; concurrent wrong passwords until the lock fail only with
// WrongPasswordError or RecordLockedError.
import test from "ava";
import { status } from "@grpc/grpc-js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { errorDetailOf } from "../../proto/rpc.js";
import {
  type ClientWarning, RecordLockedError, VaultClient, WrongPasswordError,
} from "../../client/sdk/index.js";
import { E2E_CLIENT_OPTIONS, clusterForFile, waitFor } from "../../testkit/cluster.js";

const e2e = clusterForFile(test);

const short = () => ({ deadline: new Date(Date.now() + 8_000) });

async function attemptsOnEveryNode(user: string): Promise<number[]> {
  return Promise.all(e2e.cluster.nodes.map(async (n) => (await e2e.cluster.vault(n.id).getRecordInfo({ userId: user }, short())).attemptsRemaining));
}

test.serial("a client that read the record before it was deleted and registered again (same version 1) is refused RECORD_CHANGED, re-reads, and the right password opens it", async (t) => {
  await e2e.client.register("alias", "same password", { guessLimit: 5 });
  type Reader = { readRecord(user: string): Promise<unknown> };
  const sdk = e2e.client as unknown as Reader;
  const staleRead = await sdk.readRecord("alias"); // what a lagging read served before the delete
  await e2e.client.delete("alias", "same password");
  const key = await e2e.client.register("alias", "same password", { guessLimit: 5 });
  const read = sdk.readRecord.bind(e2e.client);
  let served = 0;
  sdk.readRecord = async (user) => (served++ === 0 ? staleRead : read(user));
  try {
    t.deepEqual(await e2e.client.recover("alias", "same password"), key);
  } finally {
    delete (sdk as Partial<Reader>).readRecord;
  }
  t.is(served, 2, "the record was read again after RECORD_CHANGED");
  t.deepEqual(await attemptsOnEveryNode("alias"), [5, 5, 5], "no attempt left counted");
});

test.serial("linearizable reads: a follower cut off with an old record answers UNAVAILABLE, a stale read its local state; once reconnected, the current one", async (t) => {
  await e2e.client.register("lin", "pw");
  const leader = await e2e.cluster.leaderId();
  const [follower, other] = e2e.cluster.nodes.map((n) => n.id).filter((id) => id !== leader) as [number, number];
  const v = e2e.cluster.vault(follower);
  const staleVersion = async () => (await v.getRecordInfo({ userId: "lin", stale: true }, short()).catch(() => undefined))?.version;
  await waitFor(async () => (await staleVersion()) === 1 || undefined, "the follower to apply the registration");
  const linear = await v.getRecordInfo({ userId: "lin" }, short());
  t.is(linear.version, 1, "a follower serves a linearizable read (MsgReadIndex forwarded to the leader over the peer stream)");
  // The follower goes down before the delete, so nothing of it can reach its disk or its socket buffers.
  await e2e.cluster.kill(follower);
  await e2e.client.delete("lin", "pw"); // committed by the leader and the other follower
  e2e.cluster.pause(leader);
  e2e.cluster.pause(other);
  try {
    e2e.cluster.restart(follower);
    await waitFor(async () => (await staleVersion()) === 1 || undefined, "the restarted follower to serve its old state", 30_000);
    const err = await failure(v.getRecordInfo({ userId: "lin" }, short()));
    t.is(err.code, status.UNAVAILABLE, err.message);
    t.true([ErrorReason.NO_LEADER, ErrorReason.NOT_LEADER].includes(err.reason), `reason ${ErrorReason[err.reason]}`);
    const desc = await failure(v.getClusterDescriptor({}, short()));
    t.is(desc.code, status.UNAVAILABLE, desc.message);
    t.is((await v.getClusterDescriptor({ stale: true }, short())).descriptor?.nodes.length, 3);
    t.is(await staleVersion(), 1, "a stale read still serves the old local state");
  } finally {
    e2e.cluster.resume(leader);
    e2e.cluster.resume(other);
  }
  const gone = await waitFor(async () => {
    const f = await failure(v.getRecordInfo({ userId: "lin" }, short())).catch(() => undefined);
    return f?.code === status.NOT_FOUND ? f : undefined;
  }, "the follower to answer the delete", 30_000);
  t.is(gone.reason, ErrorReason.RECORD_NOT_FOUND);
});

test.serial("two concurrent recoveries of one record, 30 rounds: both return the key every time", async (t) => {
  const warnings: ClientWarning[] = [];
  const opts = { ...E2E_CLIENT_OPTIONS, onWarning: (w: ClientWarning) => warnings.push(w) };
  const d = await e2e.cluster.descriptor();
  const [a, b] = [new VaultClient(d, { ...opts, token: e2e.cluster.token }), new VaultClient(d, { ...opts, token: e2e.cluster.token })];
  try {
    const key = await a.register("twin", "pw", { guessLimit: 10 });
    for (let round = 0; round < 30; round++) {
      const keys = await Promise.all([a.recover("twin", "pw"), b.recover("twin", "pw")]);
      t.deepEqual(keys, [key, key], `round ${round}`);
    }
  } finally {
    a.close();
    b.close();
  }
  const codes = new Set(warnings.map((w) => w.code));
  t.true([...codes].every((c) => c === "CONFIRM_SUPERSEDED" || c === "NEW_ATTEMPT"), [...codes].join(","));
  t.log(`warnings: ${warnings.map((w) => w.code).join(", ") || "none"}`);
});

test.serial("40 concurrent wrong passwords until the record locks: every failure is WrongPasswordError or RecordLockedError (issue 10)", async (t) => {
  for (const round of [1, 2]) {
    const user = `lock-${round}`;
    await e2e.client.register(user, "right", { guessLimit: 5 });
    const results = await Promise.allSettled(Array.from({ length: 40 }, () => e2e.client.checkPassword(user, "wrong")));
    const wrong = results.filter((r) => r.status === "fulfilled" && !r.value.ok).length;
    const errors = results.flatMap((r) => (r.status === "rejected" ? [r.reason as Error] : []));
    for (const e of errors) t.true(e instanceof RecordLockedError || e instanceof WrongPasswordError, `${e.name}: ${e.message}`);
    t.true(wrong <= 5, `${wrong} wrong-password answers for a limit of 5`);
    t.true(errors.some((e) => e instanceof RecordLockedError));
    await t.throwsAsync(e2e.client.recover(user, "right"), { instanceOf: RecordLockedError });
  }
});

/** The gRPC status and ErrorDetail of a call that must fail. */
async function failure(p: Promise<unknown>): Promise<{ code: number; reason: ErrorReason; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code: number; details: string };
    return { code: e.code, reason: errorDetailOf(err as { metadata?: never })?.reason ?? ErrorReason.UNSPECIFIED, message: e.details };
  }
  throw new Error("the call succeeded");
}
