// One rogue node against the SDK and the CLI (security review h2): what a
// single node's answers must not decide on their own. Against the in-process
// fake cluster (3 nodes, t = 2: the quorum is 2), with the rogue's lies
// injected per node and method. F2: a record read as locked or newer than
// the others, and a refusal as locked or superseded, count only when a
// majority of the nodes agree; F3: leader hints stay inside the pinned
// descriptor; F4: a node's text reaches the terminal without control
// characters.
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { errorWithDetail } from "../../proto/rpc.js";
import {
  AttemptSupersededError, NotEnoughEvaluationsError, RecordLockedError, RecordMismatchError, RpcError, UnavailableError, VaultClient,
  descriptorToJson, printable, rpcErrorFrom,
} from "../../client/sdk/index.js";
import * as sdkErrors from "../../client/sdk/errors.js";
import { type PublicRecord, agreeOnRecord } from "../../client/sdk/records.js";
import { EXIT, exitCodeFor, run } from "../../client/cli/main.js";
import { splitSecretLines } from "../../client/cli/io.js";
import { FAST, FakeCluster, fail, withCluster } from "./fake-cluster.js";
import { tempDir } from "../temp.js";


const ROGUE = 3;
const rogueAddress = (cluster: FakeCluster) => cluster.nodes[ROGUE - 1]?.address ?? "";
const begins = (cluster: FakeCluster) => new Set(cluster.callsOf("BeginRecovery").map((c) => c.requestId)).size;
const locked = (info: Record<string, unknown>) => ({ ...info, locked: true, attemptsRemaining: 0, publicShares: [] });
/** The rogue's own record, one version ahead: threshold 1, itself the only share holder. */
const ownRecordAhead = (info: Record<string, unknown>) => ({
  ...info, version: (info.version as number) + 1, threshold: 1,
  publicShares: (info.publicShares as Array<{ nodeId: bigint }>).filter((x) => x.nodeId === BigInt(ROGUE)), recordDigest: new Uint8Array(32).fill(9),
});
const refuse = (method: string, reason: ErrorReason, message: string) => (m: string) => (m === method
  ? fail(grpc.status.FAILED_PRECONDITION, message, reason, reason === ErrorReason.RECORD_LOCKED ? 0 : 9) : undefined);

/** Every control character (C0, DEL, C1). */
const CONTROL = /\p{Cc}/u;

/** A grpc-message meant for a terminal: OSC 52 (set the clipboard), BEL, erase the line, CR, a forged line. */
const HOSTILE = "x\u001b]52;c;aGk=\u0007\u001b[2K\rbkv: password ok\n\u009b31m";

test("printable escapes every C0 and C1 control character and DEL, and keeps the rest", (t) => {
  t.is(printable("a\u0000b\tc\nd\re\u001bf\u007fg\u0085h\u009fi"), "a\\x00b\\x09c\\x0ad\\x0de\\x1bf\\x7fg\\x85h\\x9fi");
  t.is(printable("ordinary text, äöü ✓ 日本"), "ordinary text, äöü ✓ 日本");
});

test("a node's grpc-message reaches RpcError.serverMessage and .message without control characters", (t) => {
  const e = errorWithDetail(grpc.status.FAILED_PRECONDITION, HOSTILE, { reason: ErrorReason.UNSPECIFIED });
  const err = rpcErrorFrom(e as unknown as grpc.ServiceError, "BeginRecovery", "rogue:1");
  t.false(CONTROL.test(err.message), JSON.stringify(err.message));
  t.is(err instanceof RpcError ? err.serverMessage : undefined, printable(HOSTILE));
  t.true(err.message.includes("\\x1b]52;c;aGk=\\x07"), "the text stays readable");
});

test.serial("the CLI prints a node's refusal on one line, with no control character", async (t) => {
  const cluster = await FakeCluster.start(3, 2);
  try {
    for (const n of cluster.nodes) {
      cluster.fault(n.id, (m) => (m === "Register" ? errorWithDetail(grpc.status.FAILED_PRECONDITION, HOSTILE, { reason: ErrorReason.UNSPECIFIED }) as unknown as grpc.ServiceError : undefined));
    }
    const file = join(tempDir(t), "cluster.json");
    await writeFile(file, JSON.stringify(descriptorToJson(cluster.descriptor())));
    let err = "";
    const io = { readSecrets: async (p: readonly string[]) => splitSecretLines("pw\n", p.length), stdout: () => {}, stderr: (s: string) => { err += s; }, stderrIsTTY: false, env: {} };
    const code = await run(["register", "--user", "eve", "--password-stdin", "--cluster", file], io);
    t.is(code, EXIT.ERROR);
    t.true(err.endsWith("\n"));
    t.false(CONTROL.test(err.slice(0, -1)), JSON.stringify(err));
    t.true(err.includes("bkv: password ok\\x0a"), err);
  } finally {
    cluster.stop();
  }
});

test.serial("a leader hint naming an address outside the pinned descriptor is not followed: the call rotates to the next pinned node", async (t) => {
  const cluster = await FakeCluster.start(4, 2);
  const full = cluster.descriptor();
  const pinned = { ...full, nodes: full.nodes.slice(0, 3) };
  const stranger = cluster.nodes[3]?.address ?? "";
  const client = new VaultClient(pinned, FAST);
  try {
    // Node 1, asked first, redirects every mutation to a server that is not pinned.
    const redirect = errorWithDetail(grpc.status.UNAVAILABLE, "not the leader", { reason: ErrorReason.NOT_LEADER, leaderId: 9n, leaderAddress: stranger });
    cluster.fault(1, (m) => (m === "Register" || m === "BeginRecovery" ? redirect as unknown as grpc.ServiceError : undefined));
    const key = await client.register("carol", "pw");
    t.deepEqual(await client.recover("carol", "pw"), key);
    t.deepEqual(cluster.calls.filter((c) => c.node === 4), [], "no call (and no token) went to the unpinned address");
    t.true(cluster.callsOf("Register").some((c) => c.node === 2), "the register rotated to the next pinned node");
  } finally {
    client.close();
    cluster.stop();
  }
});

test.serial("a leader hint naming a pinned node is still followed at once", async (t) => {
  const cluster = await FakeCluster.start(3, 2);
  const client = new VaultClient(cluster.descriptor(), FAST);
  try {
    cluster.leaderId = 3;
    await client.register("dan", "pw");
    t.deepEqual(cluster.callsOf("Register").map((c) => c.node), [1, 3], "node 1's hint named node 3: followed without trying node 2");
  } finally {
    client.close();
    cluster.stop();
  }
});

test.serial("F2: one node serving the record locked is a RecordMismatchError naming it, not RecordLockedError; no attempt is spent", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("alice", "pw");
    cluster.servedInfo.set(ROGUE, locked);
    const err = await t.throwsAsync(client.recover("alice", "pw"), { instanceOf: RecordMismatchError });
    t.true(err?.message.includes(rogueAddress(cluster)), err?.message);
    t.is(exitCodeFor(err, sdkErrors), EXIT.INTEGRITY, "the CLI does not say the key is destroyed");
    t.is(begins(cluster), 0);
    t.false(cluster.records.get("alice")?.locked);
  });
});

test.serial("F2: one node serving a newer version of its own is a RecordMismatchError naming it; no attempt is spent", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("bob", "pw");
    cluster.servedInfo.set(ROGUE, ownRecordAhead);
    const err = await t.throwsAsync(client.recover("bob", "pw"), { instanceOf: RecordMismatchError });
    t.true(err?.message.includes(`node(s) ${rogueAddress(cluster)} serve the record as version 2`), err?.message);
    t.is(begins(cluster), 0);
  });
});

test("F2: agreeOnRecord believes a newer or locked state only from a quorum, and cross-checks every answer", (t) => {
  // agreeOnRecord compares versions, lock flags, digests and public-part fingerprints: answers built as the SDK keeps them.
  const answer = (address: string, over: { version?: number; locked?: boolean; recordDigest?: Uint8Array } = {}): PublicRecord => {
    const version = over.version ?? 1;
    const isLocked = over.locked ?? false;
    return {
      address, record: { version } as PublicRecord["record"], digest: over.recordDigest ?? new Uint8Array(32).fill(version),
      publicFingerprint: isLocked ? new Uint8Array(0) : new Uint8Array(32).fill(version + 100), attemptsRemaining: isLocked ? 0 : 10, locked: isLocked, appliedIndex: 1n,
    };
  };
  const lockedAnswer = { locked: true };
  const v2 = { version: 2, recordDigest: new Uint8Array(32).fill(2) };
  t.like(agreeOnRecord([answer("a"), answer("b"), answer("c", v2)], 2), { kind: "unconfirmed" }, "one newer version");
  t.like(agreeOnRecord([answer("a"), answer("b", v2), answer("c", v2)], 2), { kind: "agreed", answer: { address: "b" } }, "two newer: an honest overwrite read by one node before");
  t.like(agreeOnRecord([answer("a"), answer("b"), answer("c", lockedAnswer)], 2), { kind: "unconfirmed" }, "one locked");
  t.like(agreeOnRecord([answer("c", lockedAnswer)], 2), { kind: "unconfirmed", others: [] }, "locked, no other answer");
  t.like(agreeOnRecord([answer("a"), answer("b", lockedAnswer), answer("c", lockedAnswer)], 2), { kind: "agreed", answer: { locked: true } });
  t.like(agreeOnRecord([answer("a")], 2), { kind: "agreed" }, "a lone unlocked answer: its digest binds the BeginRecovery");
  const older = { recordDigest: new Uint8Array(32).fill(7) };
  t.throws(() => agreeOnRecord([answer("a", v2), answer("b", v2), answer("c", v2), answer("d"), answer("e", older)], 3),
    { instanceOf: RecordMismatchError, message: "nodes d and e answer different records for version 1" }, "the older answers are cross-checked too");
  t.throws(() => agreeOnRecord([answer("a"), answer("b", { ...older, locked: true })], 2),
    { instanceOf: RecordMismatchError, message: "nodes a and b answer different records for version 1" }, "a lock keeps the digest");
});

test.serial("F2: a real lock-out with one node down is RecordLockedError at once, from BeginRecovery and then from the read", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("carl", "right", { guessLimit: 1 });
    await t.throwsAsync(client.recover("carl", "wrong"));
    await cluster.stopNode(2);
    let started = Date.now();
    const first = await t.throwsAsync(client.recover("carl", "right"), { instanceOf: RecordLockedError });
    t.is(first?.method, "BeginRecovery");
    t.true(Date.now() - started < 2_000, `${Date.now() - started} ms`);
    started = Date.now();
    const again = await t.throwsAsync(client.recover("carl", "right"), { instanceOf: RecordLockedError });
    t.is(again?.method, "GetRecordInfo");
    t.true(Date.now() - started < 2_000, `${Date.now() - started} ms`);
  });
});

test.serial("F2: a lone node serving the record locked while the others are down is never RecordLockedError", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("dora", "pw");
    cluster.servedInfo.set(ROGUE, locked);
    await cluster.stopNode(1);
    await cluster.stopNode(2);
    const err = await t.throwsAsync(client.recover("dora", "pw"), { instanceOf: UnavailableError });
    t.regex(String((err as UnavailableError).lastError), /which 2 nodes must serve alike/);
  });
});

test.serial("a lone node's RECORD_LOCKED error while the others are unavailable is no lock-out: the read is retried, then UnavailableError", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("hal", "pw");
    for (const id of [1, 2]) cluster.fault(id, (m) => (m === "GetRecordInfo" ? fail(grpc.status.UNAVAILABLE, "no leader", ErrorReason.NO_LEADER) : undefined));
    cluster.fault(ROGUE, refuse("GetRecordInfo", ErrorReason.RECORD_LOCKED, "the record is locked"));
    const err = await t.throwsAsync(client.recover("hal", "pw"));
    t.true(err instanceof UnavailableError, `before the fix: RecordLockedError (${err?.name}: ${err?.message})`);
    t.is(begins(cluster), 0);
  });
});

test.serial("a record locked on a quorum while the last node is down is still RecordLockedError", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("ida", "pw");
    for (const id of [1, 2]) cluster.fault(id, refuse("GetRecordInfo", ErrorReason.RECORD_LOCKED, "the record is locked"));
    await cluster.stopNode(3);
    await t.throwsAsync(client.recover("ida", "pw"), { instanceOf: RecordLockedError });
  });
});

test.serial("F2: a node refusing BeginRecovery as locked is checked against the others and passed by: one attempt, the key", async (t) => {
  await withCluster(async (cluster, client) => {
    const key = await client.register("erin", "pw");
    cluster.fault(1, refuse("BeginRecovery", ErrorReason.RECORD_LOCKED, "the record is locked"));
    t.deepEqual(await client.recover("erin", "pw"), key);
    t.is(begins(cluster), 1, "the same request id went on to another node");
    t.true(cluster.callsOf("BeginRecovery").some((c) => c.node !== 1));
  });
});

test.serial("F2: a leader refusing every BeginRecovery as locked is a RecordMismatchError naming it, not RecordLockedError", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("fay", "pw");
    cluster.leaderId = ROGUE;
    cluster.fault(ROGUE, refuse("BeginRecovery", ErrorReason.RECORD_LOCKED, "the record is locked"));
    const err = await t.throwsAsync(client.recover("fay", "pw"), { instanceOf: RecordMismatchError });
    t.true(err?.message.includes(`node ${rogueAddress(cluster)} refuses BeginRecovery as locked again`), err?.message);
  });
});

test.serial("F2: one node refusing Evaluate as locked, another down: NotEnoughEvaluationsError, not RecordLockedError", async (t) => {
  await withCluster(async (cluster, client) => {
    await client.register("gus", "pw");
    cluster.fault(ROGUE, refuse("Evaluate", ErrorReason.RECORD_LOCKED, "the record is locked"));
    await cluster.stopNode(2);
    const err = await t.throwsAsync(client.recover("gus", "pw"), { instanceOf: NotEnoughEvaluationsError });
    t.regex(err?.message ?? "", /node 3: .*locked/);
    t.is(begins(cluster), 1);
  });
});

test.serial("F2: one node refusing Evaluate as superseded, another down: no NEW_ATTEMPT, no second attempt, NotEnoughEvaluationsError", async (t) => {
  await withCluster(async (cluster, client, warnings) => {
    await client.register("hal", "pw");
    cluster.fault(ROGUE, refuse("Evaluate", ErrorReason.ATTEMPT_SUPERSEDED, "attempt 1 was superseded by a later confirmation of this record"));
    await cluster.stopNode(2);
    const err = await t.throwsAsync(client.recover("hal", "pw"));
    t.false(err instanceof AttemptSupersededError, err?.message);
    t.true(err instanceof NotEnoughEvaluationsError, err?.message);
    t.deepEqual(warnings, []);
    t.is(begins(cluster), 1);
  });
});

test.serial("F2: a confirmation refused as locked (no honest node does) still returns the opened key, with CONFIRM_UNAVAILABLE", async (t) => {
  await withCluster(async (cluster, client, warnings) => {
    const key = await client.register("ivy", "pw");
    for (const n of cluster.nodes) cluster.fault(n.id, refuse("ConfirmRecovery", ErrorReason.RECORD_LOCKED, "the record is locked"));
    t.deepEqual(await client.recover("ivy", "pw"), key);
    t.deepEqual(warnings.map((w) => w.code), ["CONFIRM_UNAVAILABLE"]);
  });
});
