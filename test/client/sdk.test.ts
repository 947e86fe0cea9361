// VaultClient against an in-process fake cluster (fake-cluster.ts): the
// protocol end to end with real crypto, retries that reuse request ids,
// leader hints, t+1 read-back, robust combination, and typed errors.
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import {
  InconsistentEvaluationsError, InvalidInputError, NotEnoughEvaluationsError, RecordExistsError, RecordLockedError, RecordMismatchError, RecordNotFoundError,
  RpcError, UnavailableError, VaultClient, type ClientWarning, type VaultClientOptions, WrongPasswordError,
} from "../../client/sdk/index.js";
import { FakeCluster, TEST_SCRYPT, fail, unavailableTimes } from "./fake-cluster.js";

const FAST: VaultClientOptions = { scrypt: TEST_SCRYPT, retry: { deadlineMs: 3_000, callTimeoutMs: 1_000, baseDelayMs: 5, maxDelayMs: 20 }, readBackTimeoutMs: 2_000 };

async function withCluster(body: (c: FakeCluster, client: VaultClient) => Promise<void>, opts: VaultClientOptions = FAST, n = 3, t = 2): Promise<void> {
  const cluster = await FakeCluster.start(n, t);
  const client = new VaultClient(cluster.descriptor(), opts);
  try {
    await body(cluster, client);
  } finally {
    client.close();
    cluster.stop();
  }
}

test.serial("register then recover returns the key; a correct recovery resets the counter", async (t) => {
  await withCluster(async (cluster, client) => {
    const key = await client.register("alice", "correct horse", { guessLimit: 5 });
    t.is(key.length, 32);
    t.deepEqual(await client.recover("alice", "correct horse"), key);
    const s = cluster.records.get("alice");
    t.is(s?.attempts, 0, "confirmed: counter reset");
    t.is(s?.record.guessLimit, 5);
    t.is(cluster.callsOf("ConfirmRecovery").length, 1);
    t.is(cluster.callsOf("Evaluate").length, 3, "every node was asked");
  });
});

test.serial("register escrows a given key and reads the digest back from t+1 nodes", async (t) => {
  await withCluster(async (cluster, client) => {
    const given = new Uint8Array(randomBytes(32));
    t.deepEqual(await client.register("bob", "pw", { backupKey: given }), given);
    const readers = new Set(cluster.callsOf("GetRecordInfo").map((c) => c.node));
    t.true(readers.size >= 3, "t+1 = 3 distinct nodes served the digest");
  });
});

test.serial("bound shares by default; a cluster that has not activated them refuses (BOUND_SHARES_NOT_ACTIVE) and the SDK registers unbound shares, with a warning", async (t) => {
  const warnings: ClientWarning[] = [];
  await withCluster(async (cluster, client) => {
    const key = await client.register("bound", "pw");
    t.true(cluster.records.get("bound")!.record.shares.every((s) => s.wrappedShare[0] === 2));
    t.deepEqual(warnings, []);
    cluster.unboundSharesOnly = true;
    const legacy = await client.register("legacy", "pw");
    t.true(cluster.records.get("legacy")!.record.shares.every((s) => s.wrappedShare[0] === 1));
    t.deepEqual(warnings.map((w) => w.code), ["UNBOUND_SHARES"]);
    t.is(cluster.callsOf("Register").length, 3, "one refused, then the unbound one (bound's first)");
    t.deepEqual(await client.recover("legacy", "pw"), legacy);
    t.deepEqual(await client.recover("bound", "pw"), key, "a bound record still recovers");
    await client.changePassword("legacy", "pw", "pw2");
    t.deepEqual(warnings.map((w) => w.code), ["UNBOUND_SHARES", "UNBOUND_SHARES"], "an overwrite falls back too");
    t.deepEqual(await client.recover("legacy", "pw2"), legacy);
    // A leader of the release before bound shares cannot read one: INVALID_ARGUMENT in its decoder's words.
    cluster.unboundSharesOnly = false;
    let refusals = 0;
    for (const n of cluster.descriptor().nodes) {
      cluster.fault(n.nodeId, (method) => method === "Register" && refusals++ === 0
        ? fail(grpc.status.INVALID_ARGUMENT, "wrapped share has unsupported version 2", ErrorReason.INVALID_ARGUMENT) : undefined);
    }
    await client.register("old-leader", "pw");
    t.true(cluster.records.get("old-leader")!.record.shares.every((s) => s.wrappedShare[0] === 1));
    t.is(warnings.length, 3);
    // Any other INVALID_ARGUMENT is no reason to fall back.
    refusals = 0;
    for (const n of cluster.descriptor().nodes) {
      cluster.fault(n.nodeId, (method) => method === "Register" && refusals++ === 0 ? fail(grpc.status.INVALID_ARGUMENT, "salt must be 16 bytes", ErrorReason.INVALID_ARGUMENT) : undefined);
    }
    await t.throwsAsync(client.register("bad", "pw"), { instanceOf: RpcError });
    t.is(warnings.length, 3);
    // The activation applied between the bound refusal and the unbound attempt: back to bound shares, once, and no warning.
    const answers = [
      fail(grpc.status.FAILED_PRECONDITION, "not activated", ErrorReason.BOUND_SHARES_NOT_ACTIVE),
      fail(grpc.status.INVALID_ARGUMENT, "the share of node 1 is not bound to its record (wrap blob v1): this cluster registers bound shares (wrap blob v2) only; upgrade the client", ErrorReason.INVALID_ARGUMENT),
    ];
    for (const n of cluster.descriptor().nodes) cluster.fault(n.nodeId, (method) => (method === "Register" ? answers.shift() : undefined));
    await client.register("raced", "pw");
    t.true(cluster.records.get("raced")!.record.shares.every((s) => s.wrappedShare[0] === 2));
    t.is(warnings.length, 3, "registered bound: no warning");
  }, { ...FAST, onWarning: (w) => warnings.push(w) });
});

test.serial("a second registration of the same user is refused with RecordExistsError", async (t) => {
  await withCluster(async (_cluster, client) => {
    await client.register("carol", "pw");
    await t.throwsAsync(client.register("carol", "pw2"), { instanceOf: RecordExistsError });
  });
});

test.serial("a wrong password throws WrongPasswordError with the attempts remaining, and counts down", async (t) => {
  await withCluster(async (_cluster, client) => {
    await client.register("dave", "right", { guessLimit: 3 });
    const e1 = await t.throwsAsync(client.recover("dave", "wrong"), { instanceOf: WrongPasswordError }) as WrongPasswordError;
    t.is(e1.attemptsRemaining, 2);
    t.true(e1.conclusive, "3 agreeing answers with t = 2");
    t.false(await client.verifyPassword("dave", "wrong again"));
    t.deepEqual(await client.checkPassword("dave", "wrong thrice"), { ok: false, attemptsRemaining: 0 });
    const locked = await t.throwsAsync(client.recover("dave", "right"), { instanceOf: RecordLockedError }) as RecordLockedError;
    t.is(locked.attemptsRemaining, 0);
    t.is(locked.refusal?.codeName, "RESOURCE_EXHAUSTED", "the node's refusal is kept");
    await t.throwsAsync(client.recover("dave", "right"), { instanceOf: RecordLockedError }, "locked for ever");
  });
});

test.serial("retries after UNAVAILABLE carry the same request id", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("erin", "pw");
    const twice = unavailableTimes("BeginRecovery", 2); // shared by all nodes: the first two calls anywhere fail
    for (const n of cluster.nodes) cluster.fault(n.id, twice);
    await client.recover("erin", "pw");
    const begins = cluster.callsOf("BeginRecovery");
    t.is(begins.length, 3, "two UNAVAILABLE, then OK");
    t.is(new Set(begins.map((c) => c.requestId)).size, 1, "one request id for the three tries");
    t.is(begins[0]?.requestId?.length, 32, "16 bytes");
    t.is(cluster.records.get("erin")?.attempts, 0);
  });
});

test.serial("a NOT_LEADER answer with leader_address sends the retry to the leader, same request id", async (t) => {
  await withCluster(async (cluster, client) => {
    cluster.leaderId = 3;
    await client.register("frank", "pw");
    const registers = cluster.callsOf("Register");
    t.is(registers[0]?.node, 1, "first try on the first node");
    t.is(registers.at(-1)?.node, 3, "then the leader it named");
    t.is(registers.length, 2, "straight there, no rotation");
    t.is(new Set(registers.map((c) => c.requestId)).size, 1);
    await client.recover("frank", "pw");
    t.true(cluster.callsOf("BeginRecovery").every((c) => c.node === 3), "the known leader is used first afterwards");
  });
});

test.serial("a NOT_LEADER naming an address outside the descriptor is followed by the leader's node id to its pinned address", async (t) => {
  await withCluster(async (cluster, client) => {
    cluster.leaderId = 3;
    cluster.leaderHint = (id) => `bkv-${id}.bkv.svc.cluster.local:7001`;
    await client.register("fiona", "pw");
    t.deepEqual(cluster.callsOf("Register").map((c) => c.node), [1, 3], "straight to node 3's pinned address, no rotation through node 2");
  });
});

test.serial("retries give up with UnavailableError after the deadline", async (t) => {
  await withCluster(async (cluster, client) => {
    for (const n of cluster.nodes) cluster.fault(n.id, (m) => (m === "Register" ? fail(grpc.status.UNAVAILABLE, "no leader", ErrorReason.NO_LEADER) : undefined));
    const err = await t.throwsAsync(client.register("gina", "pw"), { instanceOf: UnavailableError }) as UnavailableError;
    t.true(err.attempts > 1);
    t.true(err.lastError instanceof RpcError);
    t.regex(err.message, /NO_LEADER|no leader/);
    t.is(new Set(cluster.callsOf("Register").map((c) => c.requestId)).size, 1, "every try reused the request id");
    t.true(new Set(cluster.callsOf("Register").map((c) => c.node)).size > 1, "rotated through the nodes");
  }, { ...FAST, retry: { ...FAST.retry, deadlineMs: 300 } });
});

test.serial("a non-transient error is not retried and is typed with code, message and attempts", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("hank", "pw");
    cluster.fault(1, (m) => (m === "BeginRecovery" ? fail(grpc.status.INVALID_ARGUMENT, "B is not a point", ErrorReason.INVALID_ARGUMENT, 7) : undefined));
    cluster.leaderId = 1;
    const err = await t.throwsAsync(client.recover("hank", "pw"), { instanceOf: RpcError }) as RpcError;
    t.is(err.codeName, "INVALID_ARGUMENT");
    t.is(err.serverMessage, "B is not a point");
    t.is(err.reason, "INVALID_ARGUMENT");
    t.is(err.attemptsRemaining, 7);
    t.is(cluster.callsOf("BeginRecovery").length, 1);
  });
});

test.serial("a node answering a wrong evaluation is detected and skipped with t+1 answers", async (t) => {
  await withCluster(async (cluster, client) => {
    const key = await client.register("ivy", "pw");
    cluster.evaluationFaults.set(2, "wrong-point");
    t.deepEqual(await client.recover("ivy", "pw"), key);
    // A wrong password with a faulty node among 3 answers (t = 2): no two
    // answers open the record and no three agree, so it cannot be told apart.
    const e = await t.throwsAsync(client.recover("ivy", "bad"), { instanceOf: InconsistentEvaluationsError }) as InconsistentEvaluationsError;
    t.is(e.attemptsRemaining, 9);
  });
});

test.serial("an evaluation with a bad identity signature is skipped", async (t) => {
  await withCluster(async (cluster, client) => {
    const key = await client.register("jack", "pw");
    cluster.evaluationFaults.set(1, "bad-signature");
    t.deepEqual(await client.recover("jack", "pw"), key, "the two other nodes suffice (t = 2)");
    cluster.evaluationFaults.set(2, "bad-signature");
    const err = await t.throwsAsync(client.recover("jack", "pw"), { instanceOf: NotEnoughEvaluationsError });
    t.regex(err.message, /node 1: bad identity signature/);
  });
});

test.serial("recovery works with one node of three down and fails clearly with two down", async (t) => {
  await withCluster(async (cluster, client) => {
    const key = await client.register("kim", "pw");
    await cluster.stopNode(3);
    t.deepEqual(await client.recover("kim", "pw"), key);
    await cluster.stopNode(2);
    const err = await t.throwsAsync(client.recover("kim", "pw"));
    t.true(err instanceof NotEnoughEvaluationsError || err instanceof UnavailableError, err.message);
  });
});

test.serial("a node committing another record than the one sent fails the registration", async (t) => {
  await withCluster(async (cluster, client) => {
    cluster.servedDigest.set(2, new Uint8Array(32).fill(7));
    const err = await t.throwsAsync(client.register("lea", "pw"), { instanceOf: RecordMismatchError });
    t.regex(err.message, /node 2/);
  });
});

test.serial("a node serving a different public record is caught before recovering", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("max", "pw");
    cluster.servedDigest.set(3, new Uint8Array(32).fill(1));
    await t.throwsAsync(client.recover("max", "pw"), { instanceOf: RecordMismatchError });
    t.is(cluster.callsOf("BeginRecovery").length, 0, "no attempt was spent");
  });
});

test.serial("changePassword keeps the key and switches the password", async (t) => {
  await withCluster(async (cluster, client) => {
    const key = await client.register("nina", "old");
    await client.changePassword("nina", "old", "new");
    t.is(cluster.records.get("nina")?.record.version, 2);
    t.deepEqual(await client.recover("nina", "new"), key);
    await t.throwsAsync(client.recover("nina", "old"), { instanceOf: WrongPasswordError });
  });
});

test.serial("delete removes the record; a later recovery is RecordNotFoundError", async (t) => {
  await withCluster(async (_cluster, client) => {
    await client.register("otto", "pw");
    await t.throwsAsync(client.delete("otto", "nope"), { instanceOf: WrongPasswordError });
    await client.delete("otto", "pw");
    const err = await t.throwsAsync(client.recover("otto", "pw"), { instanceOf: RecordNotFoundError }) as RecordNotFoundError;
    t.is(err.codeName, "NOT_FOUND");
  });
});

test.serial("status reports reachability, descriptor agreement and a record per node", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("pia", "pw", { guessLimit: 4 });
    await cluster.stopNode(2);
    const s = await client.status("pia");
    t.true(s.recoverable);
    t.deepEqual(s.nodes.map((n) => n.reachable), [true, false, true]);
    t.true(s.nodes[0]?.descriptorMatches);
    t.is(s.nodes[0]?.record?.version, 1);
    t.is(s.nodes[0]?.record?.attemptsRemaining, 4);
    t.is((await client.status("nobody")).nodes[0]?.record?.found, false);
  });
});

test.serial("bad input is refused before any call", async (t) => {
  await withCluster(async (cluster, client) => {
    await t.throwsAsync(client.register("", "pw"), { instanceOf: InvalidInputError });
    await t.throwsAsync(client.register("u", "pw", { guessLimit: 0 }), { instanceOf: InvalidInputError });
    await t.throwsAsync(client.register("u", "pw", { threshold: 4 }), { instanceOf: InvalidInputError });
    await t.throwsAsync(client.register("u", "pw", { backupKey: new Uint8Array(16) }), { instanceOf: InvalidInputError });
    await t.throwsAsync(client.register("u", ""), { instanceOf: InvalidInputError, message: /password/ });
    t.is(cluster.calls.length, 0);
    await client.register("u", "pw");
    await t.throwsAsync(client.recover("u", ""), { instanceOf: InvalidInputError, message: /password/ });
    t.is(cluster.callsOf("BeginRecovery").length, 0, "no attempt spent on an empty password");
  });
});

test.serial("after a membership change, a recovery re-shares the record to the pinned nodes", async (t) => {
  const cluster = await FakeCluster.start(4, 2);
  const full = cluster.descriptor();
  const old = new VaultClient({ ...full, nodes: full.nodes.slice(0, 3) }, FAST);
  const current = new VaultClient(full, FAST);
  try {
    const key = await old.register("quin", "pw");
    t.deepEqual(cluster.records.get("quin")?.record.shares.map((s) => s.nodeId), [1, 2, 3]);
    t.deepEqual(await current.recover("quin", "pw"), key);
    const rec = cluster.records.get("quin")?.record;
    t.is(rec?.version, 2);
    t.deepEqual(rec?.shares.map((s) => s.nodeId), [1, 2, 3, 4]);
    t.deepEqual(await current.recover("quin", "pw"), key, "the re-shared record opens with the same password");
  } finally {
    old.close();
    current.close();
    cluster.stop();
  }
});

test.serial("a stale descriptor never moves shares back: no re-share, a warning", async (t) => {
  const cluster = await FakeCluster.start(4, 2);
  const full = cluster.descriptor();
  const warnings: ClientWarning[] = [];
  const current = new VaultClient(full, FAST);
  const stale = new VaultClient({ ...full, nodes: full.nodes.slice(0, 3) }, { ...FAST, onWarning: (w) => warnings.push(w) });
  try {
    const key = await current.register("rex", "pw");
    t.deepEqual(await stale.recover("rex", "pw"), key, "three of the four holders suffice");
    t.is(cluster.records.get("rex")?.record.version, 1, "not re-shared");
    t.deepEqual(warnings.map((w) => w.code), ["RESHARE_STALE_DESCRIPTOR"]);
    t.regex(warnings[0]?.message ?? "", /update the descriptor/);
  } finally {
    current.close();
    stale.close();
    cluster.stop();
  }
});

test.serial("an unconfirmable recovery still returns the key, with a CONFIRM_UNAVAILABLE warning", async (t) => {
  const warnings: ClientWarning[] = [];
  await withCluster(async (cluster, client) => {
    const key = await client.register("sam", "pw");
    for (const n of cluster.nodes) cluster.fault(n.id, (m) => (m === "ConfirmRecovery" ? fail(grpc.status.UNAVAILABLE, "down", ErrorReason.NO_LEADER) : undefined));
    t.deepEqual(await client.recover("sam", "pw"), key);
    t.is(cluster.records.get("sam")?.attempts, 1, "the attempt still counts");
    t.deepEqual(warnings.map((w) => w.code), ["CONFIRM_UNAVAILABLE"]);
    t.regex(warnings[0]?.message ?? "", /could not be confirmed/);
  }, { ...FAST, retry: { ...FAST.retry, deadlineMs: 300 }, onWarning: (w) => warnings.push(w) });
});

test.serial("a confirmation already settled by a concurrent recovery is a CONFIRM_SUPERSEDED warning: the key is still returned (chaos smoke1)", async (t) => {
  const warnings: ClientWarning[] = [];
  await withCluster(async (cluster, client) => {
    const key = await client.register("racer", "pw");
    const settled = (method: string) => method === "ConfirmRecovery"
      ? fail(grpc.status.FAILED_PRECONDITION, "attempt 9 is not pending for \"racer\" (never begun, already confirmed, superseded or locked)", ErrorReason.ATTEMPT_NOT_FOUND)
      : undefined;
    for (const id of [1, 2, 3]) cluster.fault(id, settled);
    t.deepEqual(await client.recover("racer", "pw"), key);
    t.deepEqual(warnings.map((w) => w.code), ["CONFIRM_SUPERSEDED"]);
    t.regex(warnings[0]?.message ?? "", /already confirmed by a concurrent recovery/);
  }, { ...FAST, onWarning: (w) => warnings.push(w) });
});

test.serial("a confirmation refused for another reason fails, whatever its text: the reason decides, not the message", async (t) => {
  const warnings: ClientWarning[] = [];
  await withCluster(async (cluster, client) => {
    await client.register("vera", "pw");
    const stale = (method: string) => method === "ConfirmRecovery"
      ? fail(grpc.status.FAILED_PRECONDITION, "attempt 9 is not pending for \"vera\" (never begun, already confirmed, superseded or locked)", ErrorReason.VERSION_MISMATCH)
      : undefined;
    for (const id of [1, 2, 3]) cluster.fault(id, stale);
    const err = await t.throwsAsync(client.recover("vera", "pw"), { instanceOf: RpcError });
    t.is(err?.reason, "VERSION_MISMATCH");
    t.deepEqual(warnings, []);
  }, { ...FAST, onWarning: (w) => warnings.push(w) });
});
