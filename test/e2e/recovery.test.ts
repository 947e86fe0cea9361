// End to end on one real 3-node cluster (bkv-node processes, SoftHSM tokens,
// gRPC with TLS): registration, recovery, the guess limit, counter reset,
// refused confirmations, request-id dedupe, invalid input, forwarding.
import test from "ava";
import { randomBytes } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { G, encodePoint, randomScalar } from "../../proto/crypto/index.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { errorDetailOf } from "../../proto/rpc.js";
import { RecordExistsError, RecordLockedError, VaultClient, WrongPasswordError, type VaultClientOptions } from "../../client/sdk/index.js";
import { LocalCluster, reportLogsOnFailure } from "../../testkit/cluster.js";

reportLogsOnFailure(test);

const OPTS: VaultClientOptions = { scrypt: { N: 1024, r: 8, p: 1 }, retry: { deadlineMs: 20_000 } };

let cluster: LocalCluster;
let client: VaultClient;

test.before(async () => {
  cluster = await LocalCluster.start();
  client = new VaultClient(await cluster.descriptor(), { ...OPTS, token: cluster.token });
});

test.after.always(async () => {
  client?.close();
  await cluster?.close();
});

const blinded = () => encodePoint(G.multiply(randomScalar()));
const rid = () => new Uint8Array(randomBytes(16));

/** The gRPC status, ErrorDetail and message of a call that must fail. */
async function failure(p: Promise<unknown>): Promise<{ code: number; reason: ErrorReason; message: string; remaining: number | undefined; leaderAddress: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code: number; details: string; metadata?: never };
    const d = errorDetailOf(err as { metadata?: never });
    return { code: e.code, reason: d?.reason ?? ErrorReason.UNSPECIFIED, message: e.details, remaining: d?.attemptsRemaining, leaderAddress: d?.leaderAddress ?? "" };
  }
  throw new Error("the call succeeded");
}

test.serial("register then recover with the right password; the counter is back at the limit", async (t) => {
  const key = await client.register("alice", "correct horse");
  t.is(key.length, 32);
  t.deepEqual(await client.recover("alice", "correct horse"), key);
  for (const n of cluster.nodes) {
    const info = await cluster.vault(n.id).getRecordInfo({ userId: "alice" });
    t.is(info.attemptsRemaining, 10, `node ${n.id}`);
  }
  await t.throwsAsync(client.register("alice", "other"), { instanceOf: RecordExistsError });
});

test.serial("wrong passwords count down; at the limit the shares are wiped on every node and the right password fails", async (t) => {
  await client.register("bob", "right", { guessLimit: 3 });
  for (const left of [2, 1, 0]) {
    const err = await t.throwsAsync(client.recover("bob", "wrong"), { instanceOf: WrongPasswordError });
    t.is(err?.attemptsRemaining, left);
  }
  await t.throwsAsync(client.recover("bob", "wrong"), { instanceOf: RecordLockedError });
  const applied = Number((await cluster.status(await cluster.leaderId())).appliedIndex);
  for (const n of cluster.nodes) {
    await cluster.waitApplied(n.id, applied);
    const info = await cluster.vault(n.id).getRecordInfo({ userId: "bob" });
    t.true(info.locked, `node ${n.id} shows the record locked`);
    t.is(info.publicShares.length, 0, `node ${n.id} holds no shares`);
    t.is(info.attemptsRemaining, 0);
  }
  await t.throwsAsync(client.recover("bob", "right"), { instanceOf: RecordLockedError });
});

test.serial("a correct recovery resets the counter", async (t) => {
  const key = await client.register("carol", "pw", { guessLimit: 5 });
  await t.throwsAsync(client.recover("carol", "nope"), { instanceOf: WrongPasswordError });
  const err = await t.throwsAsync(client.recover("carol", "nope"), { instanceOf: WrongPasswordError });
  t.is(err?.attemptsRemaining, 3);
  t.deepEqual(await client.recover("carol", "pw"), key);
  t.is((await cluster.vault(1).getRecordInfo({ userId: "carol" })).attemptsRemaining, 5);
});

test.serial("a confirmation with a bad signature is refused and resets nothing", async (t) => {
  await client.register("dave", "pw", { guessLimit: 4 });
  const v = cluster.vault(await cluster.leaderId());
  const begun = await v.beginRecovery({ requestId: rid(), userId: "dave", blindedElement: blinded() });
  t.is(begun.attemptsRemaining, 3);
  const f = await failure(v.confirmRecovery({ requestId: rid(), userId: "dave", version: 1, attemptId: begun.attemptId, signature: new Uint8Array(randomBytes(64)) }));
  t.is(f.code, status.PERMISSION_DENIED);
  t.is(f.reason, ErrorReason.BAD_SIGNATURE);
  t.is(f.remaining, 3);
  t.regex(f.message, /signature does not verify/);
  t.is((await v.getRecordInfo({ userId: "dave" })).attemptsRemaining, 3);
});

test.serial("a BeginRecovery retried with the same request id counts once, also through another node", async (t) => {
  await client.register("erin", "pw", { guessLimit: 6 });
  const id = rid();
  const B = blinded();
  const lead = await cluster.leaderId();
  const follower = cluster.nodes.find((n) => n.id !== lead)?.id ?? 1;
  const first = await cluster.vault(lead).beginRecovery({ requestId: id, userId: "erin", blindedElement: B });
  const again = await cluster.vault(lead).beginRecovery({ requestId: id, userId: "erin", blindedElement: B });
  const viaFollower = await cluster.vault(follower).beginRecovery({ requestId: id, userId: "erin", blindedElement: B });
  t.is(again.attemptId, first.attemptId);
  t.is(viaFollower.attemptId, first.attemptId);
  t.is(first.attemptsRemaining, 5);
  t.is((await cluster.vault(lead).getRecordInfo({ userId: "erin" })).attemptsRemaining, 5);
  // The same id with different content is refused, not applied.
  const reused = await failure(cluster.vault(lead).beginRecovery({ requestId: id, userId: "erin", blindedElement: blinded() }));
  t.is(reused.code, status.INVALID_ARGUMENT);
  t.is(reused.reason, ErrorReason.REQUEST_ID_REUSED);
});

test.serial("a follower forwards mutating calls; the admin API names the leader", async (t) => {
  await client.register("frank", "pw");
  const lead = await cluster.leaderId();
  const follower = cluster.nodes.find((n) => n.id !== lead)?.id ?? 1;
  const begun = await cluster.vault(follower).beginRecovery({ requestId: rid(), userId: "frank", blindedElement: blinded() });
  t.is(begun.attemptsRemaining, 9);
  const ev = await cluster.vault(follower).evaluate({ userId: "frank", attemptId: begun.attemptId });
  t.is(Number(ev.nodeId), follower);
  t.is(ev.evaluatedElement.length, 33);
  const f = await failure(cluster.admin(follower).addLearner({ requestId: rid(), nodeId: 9n, peerAddress: "127.0.0.1:1" }));
  t.is(f.code, status.UNAVAILABLE);
  t.is(f.reason, ErrorReason.NOT_LEADER);
  t.is(f.leaderAddress, cluster.node(lead).admin, "the leader's ADMIN address: the caller is an admin client");
});

test.serial("invalid inputs answer a canonical status with a clear message and propose nothing", async (t) => {
  const lead = await cluster.leaderId();
  const v = cluster.vault(lead);
  const before = (await cluster.status(lead)).appliedIndex;
  const cases: Array<[string, Promise<unknown>, number, RegExp]> = [
    ["empty register", v.register({}), status.INVALID_ARGUMENT, /user_id/],
    ["register without scrypt parameters", v.register({ requestId: rid(), userId: "x" }), status.INVALID_ARGUMENT, /scrypt_params is required/],
    ["register without shares", v.register({ requestId: rid(), userId: "x", version: 1, threshold: 1, guessLimit: 3, scryptParams: { n: 1024, r: 8, p: 1 } }), status.INVALID_ARGUMENT, /./],
    ["short request id", v.beginRecovery({ requestId: new Uint8Array(3), userId: "alice", blindedElement: blinded() }), status.INVALID_ARGUMENT, /request id/i],
    ["not a point", v.beginRecovery({ requestId: rid(), userId: "alice", blindedElement: new Uint8Array(33) }), status.INVALID_ARGUMENT, /./],
    ["empty user", v.getRecordInfo({ userId: "" }), status.INVALID_ARGUMENT, /user/],
    ["long user", v.getRecordInfo({ userId: "u".repeat(300) }), status.INVALID_ARGUMENT, /user/],
    ["attempt 0", v.evaluate({ userId: "alice", attemptId: 0n }), status.INVALID_ARGUMENT, /attempt_id/],
    ["short signature", v.confirmRecovery({ requestId: rid(), userId: "alice", version: 1, attemptId: 5n, signature: new Uint8Array(5) }), status.INVALID_ARGUMENT, /./],
    ["version 0", v.delete({ requestId: rid(), userId: "alice", version: 0, ownerSignature: new Uint8Array(64) }), status.INVALID_ARGUMENT, /version/],
  ];
  for (const [name, call, code, message] of cases) {
    const f = await failure(call);
    t.is(f.code, code, name);
    t.regex(f.message, message, name);
  }
  t.is((await cluster.status(lead)).appliedIndex, before, "nothing was proposed");
  const missing = await failure(v.getRecordInfo({ userId: "nobody" }));
  t.is(missing.code, status.NOT_FOUND);
  t.is(missing.reason, ErrorReason.RECORD_NOT_FOUND);
  // Index 2 is below alice's last confirmation (her recovery above): not pending, and superseded by that confirmation.
  const notPending = await failure(v.evaluate({ userId: "alice", attemptId: 2n }));
  t.is(notPending.code, status.FAILED_PRECONDITION);
  t.is(notPending.reason, ErrorReason.ATTEMPT_SUPERSEDED);
  t.regex(notPending.message, /^attempt 2 was superseded by a later confirmation of this record/);
});

test.serial("no node log line holds a PIN, a password or key material", async (t) => {
  for (const n of cluster.nodes) {
    const log = cluster.logOf(n.id);
    t.false(log.includes(cluster.pin(n.id)), `node ${n.id}'s log holds its PIN`);
    t.false(log.includes("correct horse"), `node ${n.id}'s log holds a password`);
    for (const line of log.trim().split("\n")) t.notThrows(() => JSON.parse(line), `node ${n.id}: a log line is not JSON: ${line.slice(0, 80)}`);
  }
});

test.serial("SIGTERM on the leader hands leadership to another voter before it stops", async (t) => {
  const lead = await cluster.leaderId();
  await cluster.stop(lead);
  const line = cluster.logOf(lead).split("\n").find((l) => l.includes("leadership transferred before shutdown"));
  t.truthy(line, "the leader logged its transfer");
  const to = (JSON.parse(line ?? "{}") as { to?: number }).to ?? 0;
  t.not(to, lead);
  t.not(to, 0);
  t.true(cluster.logOf(lead).includes('"msg":"node stopped"'));
  t.is(await cluster.leaderId(), to);
});
