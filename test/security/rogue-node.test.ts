// A rogue node (test/security/rogue-node.ts) in a real cluster of 3 (then 4):
// nodes 1 and 2 are bkv-node processes, node 3 is taken over by the rogue
// (its token, data dir and certificate). As follower, then as leader, it
// puts forged entries into the log and sends raw Raft messages; the honest
// nodes must refuse each, no counter may go back on them, and they must
// evaluate no attempt that was never committed. Each refusal is t.log-ged.
// Client authentication is on: begin and register entries carry the caller's
// token and every node verifies it on apply (node/vault jwt.ts), so the rogue
// cannot propose attempts for a user without that user's valid token.
import test, { type ExecutionContext } from "ava";
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { EntryType, MessageType, message } from "../../node/raft/index.js";
import { type Command, type NodeAnnouncement, type VaultResult, VaultStateMachine, encodeCommand, parseEnvelope, stampTime, unstamp } from "../../node/vault/index.js";
import { recordKey } from "../../node/vault/keys.js";
import { decodeStoredRecord, encodeStoredRecord } from "../../node/vault/values.js";
import { editSnapshot } from "../../testkit/vault-store.js";
import { encodeServerSnapshot } from "../../node/server/snapshot-data.js";
import { G, encodePoint, equalBytes, finishRecovery, randomScalar, startRecovery } from "../../proto/crypto/index.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { errorDetailOf } from "../../proto/rpc.js";
import { UnverifiedRegistrationError, VaultClient, WrongPasswordError } from "../../client/sdk/index.js";
import { LocalCluster, waitFor, reportLogsOnFailure } from "../../testkit/cluster.js";
import { mintToken } from "../../client/cli/dev-issuer.js";
import { RogueNode } from "./rogue-node.js";

reportLogsOnFailure(test);

const USER = "victim";
const BYSTANDER = "bystander";
const SQUATTED = "not-yet-registered";
const HONEST = [1, 2];
const ROGUE = 3;

let cluster: LocalCluster;
let rogue: RogueNode;

test.before(async () => {
  cluster = await LocalCluster.start({ size: 3 });
  const client = new VaultClient(await cluster.descriptor(), { token: cluster.token, scrypt: { N: 1024, r: 8, p: 1 }, retry: { deadlineMs: 20_000 } });
  await client.register(USER, "right password", { guessLimit: 5 });
  await client.register(BYSTANDER, "another password"); // its entry in the log carries the bystander's token
  await client.recover(USER, "right password"); // a real confirmation is in the log
  await client.recover(USER, "wrong password").catch((e: unknown) => { if (!(e instanceof WrongPasswordError)) throw e; });
  client.close();
  await cluster.stop(ROGUE); // graceful: hands leadership over if it had it
  rogue = await RogueNode.start(cluster.node(ROGUE).configFile, (l) => appendFileSync(join(cluster.dir, "rogue-3.log"), l));
  await waitFor(() => rogue.loop.leaderId !== 0 && rogue.loop.vault.getRecord(USER)?.pending.length === 1 || undefined, "the rogue to catch up");
});

test.after.always(async () => {
  await rogue?.stop();
  await cluster?.close();
});

const blinded = () => encodePoint(G.multiply(randomScalar()));
const rid = () => new Uint8Array(randomBytes(16));
const junkSignature = () => new Uint8Array(randomBytes(64));

interface Seen { remaining: number; version: number; locked: boolean; node1Key: string }

/** What each honest node shows of the victim's record and node 1's announced identity key. */
async function observe(): Promise<Map<number, Seen>> {
  const out = new Map<number, Seen>();
  for (const id of HONEST) {
    const info = await cluster.vault(id).getRecordInfo({ userId: USER });
    const d = await cluster.vault(id).getClusterDescriptor({});
    const n1 = d.descriptor?.nodes.find((n) => n.nodeId === 1n);
    out.set(id, { remaining: info.attemptsRemaining, version: info.version, locked: info.locked, node1Key: Buffer.from(n1?.identityPublicKey ?? []).toString("hex") });
  }
  return out;
}

/** No counter went back (attempts remaining never grew), the record and node 1's keys are unchanged, on every honest node. */
function assertNothingGaveWay(t: ExecutionContext, before: Map<number, Seen>, after: Map<number, Seen>): void {
  for (const id of HONEST) {
    const b = before.get(id) as Seen;
    const a = after.get(id) as Seen;
    t.true(a.remaining <= b.remaining, `node ${id}: attempts remaining went from ${b.remaining} up to ${a.remaining}`);
    t.deepEqual([a.version, a.locked, a.node1Key], [b.version, b.locked, b.node1Key], `node ${id}`);
  }
}

/** Waits until every honest node applied what the rogue applied. */
/**
 * The rogue leads, and every honest node knows it: a linearizable read on a
 * node that has not yet heard from the new leader answers UNAVAILABLE ("no
 * leader is known"), and the raw clients here do not retry.
 */
async function rogueLeads(): Promise<void> {
  await waitFor(() => rogue.loop.isLeader || undefined, "the rogue to lead");
  for (const id of HONEST) await waitFor(async () => (await cluster.status(id)).leaderId === BigInt(ROGUE) || undefined, `node ${id} to follow the rogue`);
}

/**
 * An honest node leads. After an attack that moves the term, the rogue is a
 * full Raft member and may win the election that follows (it did in one CI
 * run, and every later test then waited for an honest leader in vain): it
 * then hands leadership to an honest node, as a rogue that wants to stay
 * unnoticed would.
 */
async function honestLeads(): Promise<number> {
  return waitFor(async () => {
    if (rogue.loop.isLeader) {
      await rogue.loop.transferLeadership(HONEST[0]!, 2_000);
      return undefined;
    }
    for (const id of HONEST) if ((await cluster.status(id)).leaderId === BigInt(id)) return id;
    return undefined;
  }, "an honest node to lead", 30_000);
}

async function honestCaughtUp(): Promise<void> {
  const index = rogue.loop.vault.appliedIndex;
  for (const id of HONEST) await cluster.waitApplied(id, index);
}

/** The committed commands of the rogue's log of one kind. */
function logged<K extends Command["kind"]>(kind: K): Extract<Command, { kind: K }>[] {
  return rogue.entriesFrom(1).map((e) => parseEnvelope(unstamp(e.data).payload).command).filter((c): c is Extract<Command, { kind: K }> => c?.kind === kind);
}

/** Each forgery of DESIGN §6.5 the rogue can write into the log, with the refusal honest nodes must answer. */
async function forgeries(): Promise<Array<{ name: string; bytes: Uint8Array; requestId: Uint8Array | null; reason: string }>> {
  const view = rogue.loop.vault.getRecord(USER);
  if (view === undefined) throw new Error("no record");
  const pending = view.pending[0]?.attemptId ?? 0;
  const user = USER;
  const version = view.record.version;
  const confirmed = logged("confirm")[0];
  const registered = logged("register")[0];
  if (confirmed === undefined || registered === undefined) throw new Error("the log holds no confirmation or registration");
  const cmd = (c: Command) => ({ bytes: encodeCommand(c), requestId: c.kind === "announce" ? null : c.requestId });
  const node1 = rogue.loop.vault.nodes().find((n) => n.nodeId === 1);
  if (node1 === undefined) throw new Error("node 1 never announced");
  // The strongest rogue holds a valid token of the victim's (the victim called it): what needs more than a token is still refused.
  const token = await victimToken();
  const bystanderToken = logged("register").find((c) => c.record.user === BYSTANDER)?.token;
  if (bystanderToken === undefined) throw new Error("the bystander's registration carries no token");
  const selfSigned = await mintToken({ ...cluster.issuer, key: generateKeyPairSync("ed25519").privateKey }, { subject: USER });
  return [
    { name: "attempt for the victim without a token", reason: "TOKEN_INVALID", ...cmd({ kind: "begin", requestId: rid(), user, blinded: blinded() }) },
    { name: "attempt for the victim with the bystander's token (read from the log)", reason: "TOKEN_SUBJECT_MISMATCH", ...cmd({ kind: "begin", requestId: rid(), user, blinded: blinded(), token: bystanderToken }) },
    { name: "attempt for the victim with a token the rogue signed under the issuer's key id", reason: "TOKEN_INVALID", ...cmd({ kind: "begin", requestId: rid(), user, blinded: blinded(), token: selfSigned }) },
    { name: "registration squatting a user id without a token", reason: "TOKEN_INVALID", ...cmd({ ...registered, requestId: rid(), record: { ...registered.record, user: SQUATTED }, token: undefined }) },
    { name: "confirmation with a bad signature", reason: "BAD_SIGNATURE", ...cmd({ kind: "confirm", requestId: rid(), user, version, attemptId: pending, signature: junkSignature() }) },
    { name: "counter reset: confirmation of an attempt that is not pending", reason: "ATTEMPT_SUPERSEDED", ...cmd({ kind: "confirm", requestId: rid(), user, version, attemptId: 2, signature: junkSignature() }) },
    { name: "counter reset: the committed confirmation replayed under another request id", reason: "ATTEMPT_SUPERSEDED", ...cmd({ ...confirmed, requestId: rid() }) },
    { name: "counter reset: re-registration of the same version", reason: "RECORD_EXISTS", ...cmd({ ...registered, requestId: rid(), token }) },
    { name: "overwrite without the owner's signature", reason: "BAD_SIGNATURE", ...cmd({ kind: "register", requestId: rid(), record: { ...registered.record, version: version + 1 }, ownerSignature: junkSignature(), token }) },
    { name: "delete without the owner's signature", reason: "BAD_SIGNATURE", ...cmd({ kind: "delete", requestId: rid(), user, version, signature: junkSignature() }) },
    { name: "announcement of node 1 with the rogue's keys", reason: "BAD_SIGNATURE", ...cmd({ kind: "announce", node: await rogue.announceAs(1, node1.clientAddress) }) },
    { name: "announcement of node 1 with the rogue's keys and certificate (node-3's)", reason: "BAD_SIGNATURE", ...cmd({ kind: "announce", node: await rogue.announceAs(1, node1.clientAddress, true) }) },
    { name: "announcement of node 1's keys not signed by node 1", reason: "BAD_SIGNATURE", ...cmd({ kind: "announce", node: { ...node1, clientAddress: "127.0.0.1:1", signature: (await rogue.announceAs(1, "127.0.0.1:1")).signature } }) },
    { name: "an entry that is not a command", reason: "INVALID_ENCODING", bytes: new Uint8Array(randomBytes(48)), requestId: null },
    { name: "a command of an unknown kind", reason: "INVALID_ENCODING", bytes: Uint8Array.of(0x62, 0x6b, 0x76, 0x43, 1, 0xfe, ...randomBytes(16)), requestId: null },
  ];
}

async function attackThroughTheLog(t: ExecutionContext, role: string): Promise<void> {
  const before = await observe();
  for (const f of await forgeries()) {
    const predicted = rogue.verdict(f.bytes);
    let result: VaultResult;
    if (f.requestId !== null) result = await rogue.proposeRaw(f.requestId, f.bytes);
    else {
      await rogue.proposeUnchecked(f.bytes);
      result = predicted;
    }
    t.false(result.ok, `${role}: ${f.name} was applied`);
    if (!result.ok) {
      t.true(result.reason === f.reason || (f.reason === "INVALID_ENCODING" && result.code === "INVALID_ARGUMENT"), `${role}: ${f.name}: ${result.reason} ${result.message}`);
      t.log(`${role}: ${f.name} -> refused ${result.code}/${result.reason}: ${result.message}`);
    }
  }
  await honestCaughtUp();
  const after = await observe();
  assertNothingGaveWay(t, before, after);
  for (const id of HONEST) t.is(after.get(id)?.remaining, before.get(id)?.remaining, `${role}: node ${id} counted a refused attempt`);
  for (const id of HONEST) await t.throwsAsync(cluster.vault(id).getRecordInfo({ userId: SQUATTED }), { message: /has no record/ }, `${role}: node ${id} holds a squatted record`);
  await assertSameState(t);
}

/** A fresh token for the victim, as the victim's client would send it. */
function victimToken(): Promise<string> {
  return mintToken(cluster.issuer, { subject: USER });
}

/** Every honest node and the rogue hold the same state at the same index (nothing was half-applied anywhere). */
async function assertSameState(t: ExecutionContext): Promise<void> {
  const digests = await waitFor(async () => {
    const s = await Promise.all(HONEST.map((id) => cluster.admin(id).getClusterStatus({ includeStateDigest: true })));
    const idx = new Set(s.map((x) => x.stateDigestIndex));
    return idx.size === 1 && Number(s[0]?.stateDigestIndex) === rogue.loop.vault.appliedIndex ? s.map((x) => Buffer.from(x.stateDigest).toString("hex")) : undefined;
  }, "honest nodes at the rogue's applied index");
  t.deepEqual(digests, HONEST.map(() => Buffer.from(rogue.loop.vault.digest()).toString("hex")));
}

/** Evaluate on honest nodes for attempts that are not pending in their applied state. */
async function evaluationsWithoutAttempt(t: ExecutionContext, role: string): Promise<void> {
  const confirmedAttempt = logged("confirm")[0]?.attemptId ?? 0;
  const cases = [
    { name: "an index that holds no begin", attemptId: 2n, code: status.FAILED_PRECONDITION, reason: ErrorReason.ATTEMPT_SUPERSEDED },
    { name: "an attempt already confirmed", attemptId: BigInt(confirmedAttempt), code: status.FAILED_PRECONDITION, reason: ErrorReason.ATTEMPT_SUPERSEDED },
    // Above the leader's read index: no attempt, now or later (it was UNAVAILABLE ATTEMPT_NOT_APPLIED, "retry shortly").
    { name: "an index never committed", attemptId: BigInt(rogue.storage.lastIndex() + 1000), code: status.FAILED_PRECONDITION, reason: ErrorReason.ATTEMPT_NOT_FOUND },
  ];
  for (const c of cases) {
    for (const id of HONEST) {
      const err = await t.throwsAsync(cluster.vault(id).evaluate({ userId: USER, attemptId: c.attemptId }), undefined, `${role}: node ${id} evaluated ${c.name}`);
      const e = err as unknown as { code: number; details: string };
      t.deepEqual([e.code, errorDetailOf(err as never)?.reason], [c.code, c.reason], `${role}: node ${id}, ${c.name}: ${e.details}`);
      t.log(`${role}: Evaluate of ${c.name} on node ${id} -> refused ${status[e.code]}: ${e.details}`);
    }
  }
}

test.serial("as follower, the rogue's forged entries are committed by the honest leader and refused on apply by every node", async (t) => {
  t.false(rogue.loop.isLeader);
  await attackThroughTheLog(t, "follower");
  await evaluationsWithoutAttempt(t, "follower");
});

test.serial("as follower, the rogue claims a higher term and tries to truncate committed entries: refused", async (t) => {
  t.false(rogue.loop.isLeader);
  await honestCaughtUp();
  const before = await observe();
  await truncate(t, "follower", rogue.loop.term + 1);
  await honestLeads(); // the honest nodes elect a leader again
  await honestCaughtUp();
  assertNothingGaveWay(t, before, await observe());
  await assertSameState(t);
});

test.serial("as follower, the rogue forwards a proposal holding a 2 MiB entry: the honest leader drops it before Raft appends it", async (t) => {
  t.false(rogue.loop.isLeader);
  await honestCaughtUp();
  const lead = await cluster.leaderId();
  const mark = cluster.logOf(lead).length;
  const entry = { term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(2 * 1024 * 1024).fill(7) };
  rogue.sendRaw([message({ type: MessageType.Prop, from: ROGUE, to: lead, term: 0, entries: [entry] })]);
  const line = await waitFor(() => cluster.logOf(lead).slice(mark).split("\n").find((l) => l.includes("forwarded proposal dropped")), `node ${lead} to drop the proposal`);
  t.like(JSON.parse(line) as object, { level: "warn", from: ROGUE, bytes: 2 * 1024 * 1024 });
  await honestCaughtUp();
  t.false(rogue.entriesFrom(1).some((e) => e.data.length >= entry.data.length), "no node appended it");
});

/**
 * Sends every honest node a MsgApp of `term` whose entry replaces a
 * committed entry of an earlier term; waits for each to log its refusal.
 */
async function truncate(t: ExecutionContext, role: string, term: number): Promise<void> {
  const commit = rogue.loop.commitIndex;
  const k = rogue.entriesFrom(1).find((e) => e.term < term && e.index > 2 && e.index <= commit);
  if (k === undefined) throw new Error("no committed entry of an earlier term");
  const begin = encodeCommand({ kind: "begin", requestId: rid(), user: USER, blinded: blinded() });
  const logBefore = new Map(HONEST.map((id) => [id, cluster.logOf(id).length]));
  rogue.sendRaw(HONEST.map((to) => message({
    type: MessageType.App, from: ROGUE, to, term, index: k.index - 1, logTerm: rogue.storage.term(k.index - 1),
    entries: [{ term, index: k.index, type: EntryType.Normal, data: begin }], commit,
  })));
  for (const id of HONEST) {
    const line = await waitFor(() => cluster.logOf(id).slice(logBefore.get(id)).split("\n").find((l) => l.includes("REFUSED append")), `node ${id} to refuse the truncation`);
    t.log(`${role}: truncation of committed index ${k.index} -> node ${id}: ${(JSON.parse(line) as { msg: string }).msg}`);
  }
}

// Found by this test (fixed since: docs/threat-model.md): a node id that had
// not announced yet was free for anyone, since an announcement only proved
// that its signer held the identity key inside it. The rogue pre-announced
// the next member with its own keys; clients then wrapped that member's
// share to the rogue, which held two shares of every new record (t = 2) and
// opened it offline. Now the cluster CA in the replicated state certifies
// who is node N: the rogue's announcements of node 4 (without certificate,
// or with its own, node-3's) are refused on apply by every node.
const preAnnounced: { descriptorKey?: string; rogueKey?: string; offline?: { guesses: number; opened: boolean; remainingBefore: number; remainingAfter: number } } = {};

test.serial("as follower, the rogue pre-announces node 4 with its own keys: refused; node 4 joins; a user registers", async (t) => {
  const address = "127.0.0.1:1";
  const attempts = [
    { how: "without certificate (kind 5)", node: await rogue.announceAs(4, address) },
    { how: "with its own certificate, node-3's (kind 7)", node: await rogue.announceAs(4, address, true) },
  ];
  for (const { how, node } of attempts) {
    const verdict = rogue.verdict(encodeCommand({ kind: "announce", node }));
    t.log(`follower: announcement of not-yet-announced node 4 with the rogue's keys, ${how} -> ${verdict.ok ? "ACCEPTED" : `refused ${verdict.reason}: ${verdict.message}`}`);
    t.like(verdict, { ok: false, reason: "BAD_SIGNATURE" }, how);
    await rogue.proposeUnchecked(encodeCommand({ kind: "announce", node }));
  }
  const announcement = attempts[0]?.node as NodeAnnouncement;
  const lead = await cluster.leaderId();
  const n4 = await cluster.addNode(4);
  await cluster.admin(lead).addLearner({ requestId: rid(), nodeId: 4n, peerAddress: n4.peer });
  await cluster.waitApplied(4, Number((await cluster.status(lead)).appliedIndex), 60_000);
  await cluster.admin(lead).promoteLearner({ requestId: rid(), nodeId: 4n });
  const d = await waitFor(async () => { const x = await cluster.descriptor(); return x.nodes.length === 4 ? x : undefined; }, "node 4 in the descriptor");
  preAnnounced.descriptorKey = Buffer.from(d.nodes.find((n) => n.nodeId === 4)?.identityPublicKey ?? []).toString("hex");
  preAnnounced.rogueKey = Buffer.from(announcement.identityPublicKey).toString("hex");
  const client = new VaultClient(d, { token: cluster.token, scrypt: { N: 1024, r: 8, p: 1 }, retry: { deadlineMs: 5_000 } });
  const key = new Uint8Array(randomBytes(32));
  // Committed; the read-back from t+1 nodes cannot reach node 3 (the rogue serves no clients).
  await client.register("newcomer", "tr0ub4dor", { guessLimit: 3, backupKey: key }).catch((e: unknown) => { if (!(e instanceof UnverifiedRegistrationError)) throw e; });
  client.close();
  await waitFor(() => rogue.loop.vault.getRecord("newcomer") ?? undefined, "the rogue to apply the registration");
  const remainingBefore = (await cluster.vault(1).getRecordInfo({ userId: "newcomer" })).attemptsRemaining;
  const dictionary = ["123456", "password", "letmein", "qwerty", "tr0ub4dor"];
  const opened = await offlineDictionaryAttack("newcomer", dictionary, key);
  const remainingAfter = (await cluster.vault(1).getRecordInfo({ userId: "newcomer" })).attemptsRemaining;
  preAnnounced.offline = { guesses: dictionary.length, opened, remainingBefore, remainingAfter };
  t.log(`the rogue tried ${dictionary.length} passwords of "newcomer" offline with its own token: key ${opened ? "OPENED" : "not opened"}; attempts remaining ${remainingBefore} -> ${remainingAfter}`);
  t.is(d.nodes.length, 4);
});

/** Each password through the shares the rogue's token can unwrap alone; true if one opens the key. */
async function offlineDictionaryAttack(user: string, passwords: readonly string[], key: Uint8Array): Promise<boolean> {
  const record = rogue.loop.vault.getRecord(user)?.record;
  if (record === undefined) throw new Error("no record");
  const mine = record.shares.filter((s) => s.nodeId === ROGUE || s.nodeId === 4);
  for (const pw of passwords) {
    const { blinded: b, state } = startRecovery(pw, record);
    const evaluations = await Promise.all(mine.map(async (s) => ({ nodeId: s.nodeId, point: await rogue.hsm.evaluate(s.wrappedShare, b, s.publicShare).catch(() => new Uint8Array(33)) })));
    try {
      if (equalBytes(finishRecovery(state, record, evaluations).backupKey, key)) return true;
    } catch { /* a wrong guess, or shares the rogue cannot unwrap */ }
  }
  return false;
}

test.serial("a rogue cannot announce keys for a node id it is not, nor open a record offline", (t) => {
  t.truthy(preAnnounced.descriptorKey, "node 4 is in the descriptor");
  t.not(preAnnounced.descriptorKey, preAnnounced.rogueKey, "clients pinned the rogue's key for node 4");
  t.false(preAnnounced.offline?.opened ?? true, "the rogue opened a key offline without an attempt being counted");
});

test.serial("as leader, the rogue's forged entries are refused on apply; its truncation of committed entries is refused", async (t) => {
  const lead = await cluster.leaderId();
  await cluster.admin(lead).transferLeadership({ nodeId: BigInt(ROGUE) });
  await rogueLeads();
  await attackThroughTheLog(t, "leader");
  await evaluationsWithoutAttempt(t, "leader");

  const before = await observe();
  await truncate(t, "leader", rogue.loop.term);
  assertNothingGaveWay(t, before, await observe());
  await assertSameState(t);
});

test.serial("as leader, the rogue equivocates: one attempt, another blinded element on each honest node, each counts it once (the limited threat)", async (t) => {
  await rogueLeads();
  await honestCaughtUp();
  const before = await observe();
  const [b1, b2] = [blinded(), blinded()];
  const requestId = rid();
  const token = await victimToken(); // the victim called the rogue
  const toNode1 = encodeCommand({ kind: "begin", requestId, user: USER, blinded: b1, token });
  const toNode2 = encodeCommand({ kind: "begin", requestId, user: USER, blinded: b2, token });
  rogue.rewrite = (m) => m.type !== MessageType.App || m.to !== 2 ? m
    : { ...m, entries: m.entries.map((e) => equalBytes(unstamp(e.data).payload, toNode1) ? { ...e, data: stampTime(toNode2, unstamp(e.data).time ?? 0) } : e) };
  const r = await rogue.proposeRaw(requestId, toNode1);
  await honestCaughtUp();
  rogue.rewrite = (m) => m;
  if (!r.ok || r.kind !== "begin") throw new Error(`the begin was refused: ${JSON.stringify(r)}`);
  const [e1, e2] = await Promise.all(HONEST.map((id) => cluster.vault(id).evaluate({ userId: USER, attemptId: BigInt(r.attemptId) })));
  t.deepEqual([e1?.blindedElement, e2?.blindedElement], [b1, b2], "each honest node evaluated the blinded element it was fed");
  const after = await observe();
  for (const id of HONEST) t.is(after.get(id)?.remaining, (before.get(id)?.remaining ?? 0) - 1, `node ${id} counted its attempt once`);
  t.log(`leader: attempt ${r.attemptId} evaluated on node 1 for one blinded element and on node 2 for another: 2 guesses with the rogue's share (t = 2) for one attempt counted on each node`);
});

// Was a KNOWN BUG (test.failing) until the attested install
// (docs/threat-model.md, "Closed: a forged InstallSnapshot resets a
// counter"): a follower installed any InstallSnapshot above its commit
// index. Now it installs a snapshot's state only when t other nodes report
// the digest it recomputed at that applied index; the rogue vouches for its
// forgery, but with t = 2 an honest node must too, and none holds that state.
test.serial("as leader, a forged snapshot does not reset a counter on an honest follower, even with the rogue vouching for it", async (t) => {
  await rogueLeads();
  const before = await observe();
  t.teardown(() => { rogue.vouch = (i) => rogue.loop.digestAt(i); });
  /** Sends node 1 a forged snapshot whose record of USER has `attempts`, vouched for by the rogue; returns node 1's refusal log line. */
  const sendForged = async (attempts: (was: number) => number): Promise<Record<string, unknown>> => {
    const index = rogue.storage.lastIndex() + 1;
    const term = rogue.loop.term;
    const vault = editSnapshot(rogue.cfg.clusterId, rogue.loop.vault.snapshot(), (s) => {
      const value = s.store.get(recordKey(USER));
      if (value === undefined) throw new Error("no record");
      const rec = decodeStoredRecord(value, s.appliedIndex);
      s.write(recordKey(USER), encodeStoredRecord({ ...rec, attempts: attempts(rec.attempts), pending: [] }));
      s.setMetaU64("applied", (s.appliedIndex = index));
    });
    const forged = VaultStateMachine.restore({ clusterId: rogue.cfg.clusterId }, vault).digest();
    rogue.vouch = (i) => (i === index ? forged : rogue.loop.digestAt(i));
    const mark = cluster.logOf(1).length;
    const data = encodeServerSnapshot({ peers: rogue.loop.peers, vault });
    const metadata = { index, term, confState: { voters: [...rogue.loop.voters], learners: [] } };
    rogue.sendRaw([message({ type: MessageType.Snap, from: ROGUE, to: 1, term, snapshot: { metadata, totalSize: data.length, offset: 0, data, done: true } })]);
    const since = () => cluster.logOf(1).slice(mark);
    await waitFor(() => since().includes("snapshot refused: ") || undefined, "node 1 to refuse the forged snapshot", 30_000);
    t.false(since().includes(`"restored snapshot"`), "node 1 did not install it");
    const refusal = since().split("\n").find((l) => l.includes("snapshot refused")) ?? "";
    t.log(`node 1: ${refusal}`);
    return JSON.parse(refusal) as Record<string, unknown>;
  };
  // A reset of the counter is refused before anyone is asked: it would take node 1's vault back.
  const reset = await sendForged(() => 0);
  t.is(reset.level, "error");
  t.regex(String(reset.why), new RegExp(`the record of "${USER}" counts 0 attempts, not [1-9]`));
  // A forgery that takes nothing back (one attempt more) is refused by the attestation: only the rogue vouches for it
  // (unattested; or a disagreement when an honest node applies that index meanwhile: the rogue leads on).
  const forward = await sendForged((was) => was + 1);
  t.deepEqual(forward.vouching, [ROGUE], "only the rogue vouched");
  const after = await observe();
  t.log(`node 1 attempts remaining: ${before.get(1)?.remaining} before the forged snapshots, ${after.get(1)?.remaining} after`);
  assertNothingGaveWay(t, before, after);
});
