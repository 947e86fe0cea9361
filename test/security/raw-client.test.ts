// A client that is not the SDK: well-formed VaultService messages with
// hostile or unusual VALUES (what grpcurl or a Go client built from the
// .proto files can send), on a real 3-node cluster over TLS. Every refusal
// is a canonical status with a clear message, and changes no node's state
// (the state digests of GetClusterStatus are compared); retries and 1 ms
// deadlines count an attempt exactly once; no token, password or PIN
// reaches a node's log. Byte-level garbage is test/fuzz and
// test/security/strict-decode.test.ts; this file sends valid protobuf.
import test, { type ExecutionContext } from "ava";
import { createCipheriv, randomBytes } from "node:crypto";
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import {
  G, type Registration, bindShares, createRegistration, decodePoint, encodePoint, randomScalar, sealShare, sharePkcs8, signConfirm, signDelete, xCoordinate,
} from "../../proto/crypto/index.js";
import { errorDetailOf } from "../../proto/rpc.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { registerRequest } from "../../client/sdk/records.js";
import { mintToken } from "../../client/cli/dev-issuer.js";
import { LocalCluster, reportLogsOnFailure, whileElecting } from "../../testkit/cluster.js";

reportLogsOnFailure(test);

let cluster: LocalCluster;
let nodes: Array<{ id: number; agreementPublicKey: Uint8Array }>;
const tokens: string[] = [];
const PASSWORD = "raw-client-password-5f1c9e";

test.before(async () => {
  cluster = await LocalCluster.start();
  nodes = (await cluster.descriptor()).nodes.map((n) => ({ id: n.nodeId, agreementPublicKey: n.agreementPublicKey }));
});
test.after.always(async () => { await cluster?.close(); });

const rid = () => new Uint8Array(randomBytes(16));
const blinded = () => encodePoint(G.multiply(randomScalar()));
/**
 * A VaultService client with no SDK interceptor: the token is whatever
 * metadata each call carries. A call refused UNAVAILABLE NO_LEADER is sent
 * again (electionsWaited).
 */
const raw = (id: number) => electionsWaited(cluster.vault(id, null));

/** How long a call refused NO_LEADER is sent again: longer than any election under load. */
const NO_LEADER_RETRY_MS = 30_000;

/**
 * `client` with each call sent again, every 100 ms for up to
 * NO_LEADER_RETRY_MS, while a node refuses it UNAVAILABLE NO_LEADER (an
 * election, refused before anything is proposed), as any client must: under
 * load the leader stepped down during a case (no quorum heard within an
 * election timeout) and the case read that refusal instead of its own answer.
 * Any other answer, refusal or deadline is the call's.
 */
function electionsWaited<C extends object>(client: C): C {
  const wrapped: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(client)) {
    wrapped[name] = (...args: unknown[]) => whileElecting(() => (f as (...a: unknown[]) => Promise<unknown>)(...args), [ErrorReason.NO_LEADER], NO_LEADER_RETRY_MS, 100);
  }
  return wrapped as C;
}

async function tokenFor(user: string, o: { now?: number; ttlSec?: number } = {}): Promise<string> {
  const t = await mintToken(cluster.issuer, { subject: user, ...o });
  tokens.push(t);
  return t;
}

async function auth(user: string, extra: Record<string, string> = {}): Promise<{ metadata: Metadata }> {
  const m = new Metadata();
  m.set("authorization", `Bearer ${await tokenFor(user)}`);
  for (const [k, v] of Object.entries(extra)) m.set(k, v);
  return { metadata: m };
}

function reg(user: string, guessLimit = 5): Registration {
  return createRegistration({
    clusterId: cluster.clusterId, user, password: PASSWORD, backupKey: new Uint8Array(randomBytes(32)), threshold: 2, guessLimit, nodes, scrypt: { N: 1024, r: 8, p: 1 },
  });
}

interface Failure { code: status; reason: ErrorReason | undefined; message: string }

async function failure(p: Promise<unknown>): Promise<Failure> {
  try {
    await p;
  } catch (err) {
    const e = err as ServiceError;
    return { code: e.code, reason: errorDetailOf(e)?.reason, message: e.details };
  }
  throw new Error("the call succeeded");
}

/** Every node's applied index and state digest. */
async function digests(): Promise<string[]> {
  await appliedEverywhere();
  return Promise.all(cluster.nodes.map(async (n) => {
    const s = await cluster.admin(n.id).getClusterStatus({ includeStateDigest: true });
    return `${s.stateDigestIndex}:${Buffer.from(s.stateDigest).toString("hex")}`;
  }));
}

/** Waits until every node applied what the leader had applied (a follower may be an entry behind a moment). */
async function appliedEverywhere(): Promise<void> {
  const applied = Number((await cluster.status(await cluster.leaderId())).appliedIndex);
  for (const n of cluster.nodes) await cluster.waitApplied(n.id, applied);
}

/** Every node's view of `users`' records, once each applied what the leader had (stale reads: each node's own state). */
async function records(users: readonly string[]): Promise<string[]> {
  await appliedEverywhere();
  return Promise.all(cluster.nodes.flatMap((n) => users.map(async (u) => {
    const r = await raw(n.id).getRecordInfo({ userId: u, stale: true }, await auth(u)).catch((err: ServiceError) => err.details);
    return typeof r === "string" ? `${u}: ${r}` : `${u}: v${r.version} left ${r.attemptsRemaining} locked ${r.locked} ${Buffer.from(r.recordDigest).toString("hex")}`;
  })));
}

type Case = readonly [string, () => Promise<unknown>, status, RegExp];

/**
 * Each case fails with its code and a message matching its pattern (never INTERNAL/UNKNOWN). Refused at
 * the port (no `users`): no node's state digest moves, nothing was proposed. Refused on apply (`users`):
 * those records are unchanged on every node (the request id is remembered with its refusal, which moves
 * the digest: docs/vault.md §5).
 */
async function refusedWithoutChange(t: ExecutionContext, cases: readonly Case[], users?: readonly string[]): Promise<void> {
  const view = () => (users === undefined ? digests() : records(users));
  const before = await view();
  for (const [name, call, code, message] of cases) {
    const f = await failure(call());
    t.is(status[f.code], status[code], `${name}: ${f.message}`);
    t.regex(f.message, message, name);
  }
  await new Promise((r) => setTimeout(r, 300)); // a proposal, had one been made, would have applied by now
  t.deepEqual(await view(), before, users === undefined ? "nothing was proposed" : "the records are unchanged on every node");
}

test.serial("hostile values in well-formed requests: a canonical status, a clear message, no state change", async (t) => {
  const lead = await cluster.leaderId();
  const v = raw(lead);
  const alice = reg("alice");
  await v.register(registerRequest(alice, rid()), await auth("alice"));
  const a = await auth("alice");
  const base = registerRequest(reg("bob"), rid());
  const b = await auth("bob");
  const withShares = (shares: typeof base.shares) => ({ ...base, requestId: rid(), shares });
  const share0 = base.shares[0]!;
  const max64 = 2n ** 64n - 1n;
  await refusedWithoutChange(t, [
    ["user id of 257 bytes", async () => v.getRecordInfo({ userId: "é".repeat(128) + "x" }, await auth("x")), status.INVALID_ARGUMENT, /user id must be 1 to 256 bytes of UTF-8 \(got 257\)/],
    ["empty user id", async () => v.beginRecovery({ requestId: rid(), userId: "", blindedElement: blinded() }, a), status.INVALID_ARGUMENT, /user id must be 1 to 256 bytes/],
    ["attempt id 0", () => v.evaluate({ userId: "alice", attemptId: 0n }, a), status.INVALID_ARGUMENT, /attempt_id must be a positive integer below 2\^53 \(got 0\)/],
    ["attempt id 2^64-1", () => v.confirmRecovery({ requestId: rid(), userId: "alice", version: 1, attemptId: max64, signature: new Uint8Array(64) }, a), status.INVALID_ARGUMENT, /attempt_id must be a positive integer below 2\^53/],
    ["attempt id 2^53", () => v.evaluate({ userId: "alice", attemptId: 2n ** 53n }, a), status.INVALID_ARGUMENT, /below 2\^53/],
    ["request id of 17 bytes", () => v.beginRecovery({ requestId: new Uint8Array(17), userId: "alice", blindedElement: blinded() }, a), status.INVALID_ARGUMENT, /request id must be 16 bytes \(got 17\)/],
    ["uncompressed B", () => v.beginRecovery({ requestId: rid(), userId: "alice", blindedElement: encodePoint(G.multiply(randomScalar()), false) }, a), status.INVALID_ARGUMENT, /B must be 33 bytes \(got 65\)/],
    ["B = -G (B + G is the identity)", () => v.beginRecovery({ requestId: rid(), userId: "alice", blindedElement: encodePoint(G.negate()) }, a), status.INVALID_ARGUMENT, /B \+ G is the identity point/],
    ["record digest of 31 bytes", () => v.beginRecovery({ requestId: rid(), userId: "alice", blindedElement: blinded(), recordDigest: new Uint8Array(31) }, a), status.INVALID_ARGUMENT, /record digest must be 32 bytes/],
    ["signature of 65 bytes", () => v.confirmRecovery({ requestId: rid(), userId: "alice", version: 1, attemptId: 5n, signature: new Uint8Array(65) }, a), status.INVALID_ARGUMENT, /signature must be 64 bytes \(got 65\)/],
    ["a share twice", () => v.register(withShares([...base.shares, share0]), b), status.INVALID_ARGUMENT, /node id 1 appears twice/],
    ["5,000 shares", () => v.register(withShares(Array.from({ length: 5000 }, (_, i) => ({ ...share0, nodeId: BigInt(i + 1) }))), b), status.RESOURCE_EXHAUSTED, /larger than max/],
    ["share node id 2^64-1", () => v.register(withShares([{ ...share0, nodeId: max64 }, ...base.shares.slice(1)]), b), status.INVALID_ARGUMENT, /shares\[0\]\.node_id must be a positive integer/],
    ["guess limit 2^32-1", () => v.register({ ...base, requestId: rid(), guessLimit: 2 ** 32 - 1 }, b), status.INVALID_ARGUMENT, /guess limit 4294967295 must be in \[1, 255\]/],
    ["threshold above the shares", () => v.register({ ...base, requestId: rid(), threshold: 4 }, b), status.INVALID_ARGUMENT, /threshold 4 must be in \[1, 3\]/],
    ["ciphertext of 100,000 bytes", () => v.register({ ...base, requestId: rid(), ciphertext: new Uint8Array(100_000) }, b), status.INVALID_ARGUMENT, /ciphertext must be 61 bytes/],
    ["an owner signature on a new record", () => v.register({ ...base, requestId: rid(), ownerSignature: new Uint8Array(64) }, b), status.INVALID_ARGUMENT, /a new record \(version 1\) carries no owner signature/],
  ]);
  await refusedWithoutChange(t, [
    ["version 2^32-1", () => v.delete({ requestId: rid(), userId: "alice", version: 2 ** 32 - 1, ownerSignature: new Uint8Array(64) }, a), status.FAILED_PRECONDITION, /cannot delete version 4294967295: the record of "alice" is at version 1/],
    ["a share left out (the others are bound to the whole record)", () => v.register(withShares(base.shares.slice(0, 2)), b), status.PERMISSION_DENIED, /made for another record/],
  ], ["alice", "bob"]);
});

test.serial("unusual user ids (NUL, controls, bidi overrides, 256 bytes of emoji) are users like any other, quoted in messages", async (t) => {
  const v = raw(await cluster.leaderId());
  for (const user of ["nul\u0000user\n", "\u202eevil\u0007", "😀".repeat(64)]) {
    const m = await auth(user);
    const r = await v.register(registerRequest(reg(user), rid()), m);
    t.is(r.version, 1, JSON.stringify(user));
    t.is((await v.getRecordInfo({ userId: user }, m)).userId, user);
    const prefix = Array.from(user).slice(0, 2).join("");
    const f = await failure(v.getRecordInfo({ userId: prefix }, await auth(prefix)));
    t.is(f.code, status.NOT_FOUND, "a prefix is another user");
    t.is(f.message, `user ${JSON.stringify(prefix)} has no record`);
  }
});

test.serial("calls out of order and request ids reused across methods are refused, counted nothing, changed nothing", async (t) => {
  const v = raw(await cluster.leaderId());
  const carol = reg("carol");
  const m = await auth("carol");
  await v.register(registerRequest(carol, rid()), m);
  const ref = { clusterId: cluster.clusterId, user: "carol", version: 1 };
  const used = rid();
  const begun = await v.beginRecovery({ requestId: used, userId: "carol", blindedElement: blinded() }, m);
  const dave = await auth("dave");
  await refusedWithoutChange(t, [
    ["confirm of an attempt never begun", () => v.confirmRecovery({ requestId: rid(), userId: "carol", version: 1, attemptId: begun.attemptId + 50n, signature: signConfirm(carol.resetPrivateKey, ref, begun.attemptId + 50n) }, m), status.FAILED_PRECONDITION, /is not pending for "carol"/],
    ["the begin's request id on a confirm", () => v.confirmRecovery({ requestId: used, userId: "carol", version: 1, attemptId: begun.attemptId, signature: signConfirm(carol.resetPrivateKey, ref, begun.attemptId) }, m), status.INVALID_ARGUMENT, /already used for a different request/],
    ["the begin's request id on a delete", () => v.delete({ requestId: used, userId: "carol", version: 1, ownerSignature: signDelete(carol.resetPrivateKey, ref) }, m), status.INVALID_ARGUMENT, /already used for a different request/],
    ["the begin's request id on another user's begin", () => v.beginRecovery({ requestId: used, userId: "dave", blindedElement: blinded() }, dave), status.INVALID_ARGUMENT, /already used for a different request/],
    // Before: UNAVAILABLE ATTEMPT_NOT_APPLIED "retry shortly" after the wait, for ever.
    ["evaluate of an attempt id the cluster never committed", () => v.evaluate({ userId: "carol", attemptId: begun.attemptId + 100_000n }, m), status.FAILED_PRECONDITION, /attempt \d+ for "carol" was never begun: the cluster has committed up to index \d+/],
    ["carol's attempt evaluated as dave", () => v.evaluate({ userId: "dave", attemptId: begun.attemptId }, dave), status.NOT_FOUND, /user "dave" has no record/],
    ["a confirmation signed by another record's key", () => v.confirmRecovery({ requestId: rid(), userId: "carol", version: 1, attemptId: begun.attemptId, signature: signConfirm(reg("x").resetPrivateKey, ref, begun.attemptId) }, m), status.PERMISSION_DENIED, /signature does not verify/],
  ], ["carol", "dave"]);
  t.is((await v.getRecordInfo({ userId: "carol" }, m)).attemptsRemaining, 4, "the one begin counted once");
  // A delete during a recovery ends it: evaluate and confirm of its attempt are NOT_FOUND, nothing else changes.
  await v.delete({ requestId: rid(), userId: "carol", version: 1, ownerSignature: signDelete(carol.resetPrivateKey, ref) }, m);
  await refusedWithoutChange(t, [
    ["evaluate after delete", () => v.evaluate({ userId: "carol", attemptId: begun.attemptId }, m), status.NOT_FOUND, /has no record/],
    ["confirm after delete", () => v.confirmRecovery({ requestId: rid(), userId: "carol", version: 1, attemptId: begun.attemptId, signature: signConfirm(carol.resetPrivateKey, ref, begun.attemptId) }, m), status.NOT_FOUND, /has no record/],
  ], ["carol"]);
});

test.serial("1 ms deadlines: a begin counts once whatever the caller saw; its retry on every node answers the same attempt", async (t) => {
  const lead = await cluster.leaderId();
  const m = await auth("erin");
  await raw(lead).register(registerRequest(reg("erin", 3), rid()), m);
  const info = await raw(lead).getRecordInfo({ userId: "erin" }, m);
  const req = { requestId: rid(), userId: "erin", blindedElement: blinded(), recordDigest: info.recordDigest };
  const first = await failure(raw(lead).beginRecovery(req, { ...m, deadline: Date.now() + 1 })).catch(() => null);
  if (first !== null) t.true([status.DEADLINE_EXCEEDED, status.CANCELLED].includes(first.code), first.message);
  const retries = await Promise.all(cluster.nodes.map((n) => raw(n.id).beginRecovery(req, m)));
  t.is(new Set(retries.map((r) => r.attemptId)).size, 1, "one attempt");
  t.true(retries.every((r) => r.attemptsRemaining === 2));
  t.is((await raw(lead).getRecordInfo({ userId: "erin" }, m)).attemptsRemaining, 2, "counted once");
});

test.serial("tokens and metadata: missing, other user's, expired, malformed, oversized, hundreds of keys; nothing proposed", async (t) => {
  const v = raw(await cluster.leaderId());
  await v.register(registerRequest(reg("frank"), rid()), await auth("frank"));
  const md = (value: string) => { const m = new Metadata(); m.set("authorization", value); return { metadata: m }; };
  const begin = (o?: { metadata: Metadata }) => () => v.beginRecovery({ requestId: rid(), userId: "frank", blindedElement: blinded() }, o);
  const old = Math.floor(Date.now() / 1000) - 1000;
  const many = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`x-k${i}`, "v"]));
  await refusedWithoutChange(t, [
    ["no token", begin(), status.UNAUTHENTICATED, /no authorization metadata/],
    ["another user's token", begin(await auth("mallory")), status.PERMISSION_DENIED, /subject "mallory" is not the request's user "frank"/],
    ["the user's id with a NUL appended", begin(await auth("frank\u0000")), status.PERMISSION_DENIED, /subject "frank\\u0000"/],
    ["expired", begin(md(`Bearer ${await tokenFor("frank", { now: old, ttlSec: 60 })}`)), status.UNAUTHENTICATED, /expired/],
    ["lower-case scheme", begin(md(`bearer ${await tokenFor("frank")}`)), status.UNAUTHENTICATED, /not `Bearer <JWT>`/],
    ["100,000-byte token", begin(md(`Bearer ${"a".repeat(100_000)}`)), status.UNAUTHENTICATED, /at most 4096 bytes/],
    ["500 metadata keys", begin(await auth("frank", many)), status.RESOURCE_EXHAUSTED, /./],
  ]);
});

/** A v2 blob of node 1's share wrapping `pkcs8` as given; the other shares valid; all bound to the record. */
function recordWithNode1Share(user: string, pkcs8: Uint8Array): Registration {
  const good = reg(user);
  const sealed = good.record.shares.map((s) => {
    const node = nodes.find((n) => n.id === s.nodeId)!;
    if (s.nodeId !== 1) return { ...sealShare(node.agreementPublicKey, 7n), nodeId: s.nodeId, publicShare: encodePoint(G.multiply(7n)) };
    const e = randomScalar();
    const c = createCipheriv("id-aes256-wrap-pad", xCoordinate(decodePoint(node.agreementPublicKey).multiply(e)), Buffer.from("a65959a6", "hex"));
    const wrapped = new Uint8Array(Buffer.concat([c.update(pkcs8), c.final()]));
    return { nodeId: 1, publicShare: encodePoint(G.multiply(7n)), ephemeralSecret: e, ephemeralPublicKey: encodePoint(G.multiply(e), false), wrapped };
  });
  const publicPart = { ...good.record, shares: sealed.map((s) => ({ nodeId: s.nodeId, publicShare: s.publicShare })) };
  return { ...good, record: { ...good.record, shares: bindShares(cluster.clusterId, publicPart, sealed) } };
}

test.serial("a registered share whose scalar is 0 is the client's bad share (FAILED_PRECONDITION), not an HSM failure; the node still serves", async (t) => {
  const one = Buffer.from(sharePkcs8(1n));
  const at = one.indexOf(Buffer.from(`0420${"00".repeat(31)}01`, "hex")) + 2; // the scalar's 32 bytes
  const zero = Uint8Array.from(one).fill(0, at, at + 32);
  const m = await auth("gina");
  const v = raw(await cluster.leaderId());
  await v.register(registerRequest(recordWithNode1Share("gina", zero), rid()), m);
  const begun = await v.beginRecovery({ requestId: rid(), userId: "gina", blindedElement: blinded() }, m);
  const f = await failure(raw(1).evaluate({ userId: "gina", attemptId: begun.attemptId }, m));
  t.is(status[f.code], "FAILED_PRECONDITION", f.message);
  t.regex(f.message, /^this node's share of the record cannot be evaluated/);
  t.not(f.reason, ErrorReason.HSM_UNAVAILABLE);
  t.is((await raw(2).evaluate({ userId: "gina", attemptId: begun.attemptId }, m)).nodeId, 2n, "the other shares evaluate");
  const st = await cluster.admin(1).getClusterStatus({});
  t.true(st.serving);
  t.is(st.hsmError, "");
});

test.serial("no node log line holds a token, the password or a PIN; every line is JSON", async (t) => {
  t.true(tokens.length > 0);
  for (const n of cluster.nodes) {
    const log = cluster.logOf(n.id);
    t.false(log.includes(cluster.pin(n.id)), `node ${n.id}: its PIN`);
    t.false(log.includes(PASSWORD), `node ${n.id}: the password`);
    for (const tok of tokens) t.false(log.includes(tok.split(".")[2]!), `node ${n.id}: a token's signature`);
    t.false(/eyJ[A-Za-z0-9_-]{10,}/.test(log), `node ${n.id}: something like a JWT`);
    for (const line of log.trim().split("\n")) t.notThrows(() => JSON.parse(line), line.slice(0, 80));
  }
});
