import test from "ava";
import {
  G,
  OprfInconsistentEvaluationsError,
  InsufficientEvaluationsError,
  InvalidArgumentError,
  InvalidLengthError,
  type NodeEvaluation,
  Point,
  RecoveryRecordMismatchError,
  type RegistrationRecord,
  OprfWrongPasswordError,
  createRegistration,
  createRegistrationAsync,
  encodePoint,
  finishRecovery,
  randomScalar,
  signConfirm,
  startRecovery,
  startRecoveryAsync,
  verifyConfirm,
  verifyOverwrite,
} from "../../proto/crypto/index.js";
import { type FakeNode, TEST_SCRYPT, evaluateAsNode, hex, makeNodes, randomKey, randomPoint } from "../../testkit/protocol.js";

function register(ids: number[], threshold: number, password = "hunter2") {
  const nodes = makeNodes(ids);
  const backupKey = randomKey();
  const reg = createRegistration({ clusterId: "c1", user: "alice", password, backupKey, threshold, guessLimit: 10, nodes, scrypt: TEST_SCRYPT });
  return { nodes, backupKey, ...reg };
}

function evaluations(nodes: FakeNode[], record: RegistrationRecord, blinded: Uint8Array): NodeEvaluation[] {
  return nodes.map((n) => ({ nodeId: n.id, point: encodePoint(evaluateAsNode(n, record, blinded)) }));
}

test("register then recover with exactly t answers, any t of them", (t) => {
  const { nodes, backupKey, record, resetPrivateKey } = register([3, 7, 11], 2);
  for (const subset of [[0, 1], [0, 2], [2, 1]]) {
    const { blinded, state } = startRecovery("hunter2", record);
    const chosen = subset.map((i) => nodes[i]!);
    const out = finishRecovery(state, record, evaluations(chosen, record, blinded));
    t.is(hex(out.backupKey), hex(backupKey));
    t.is(out.resetPrivateKey, resetPrivateKey);
    t.is(hex(out.resetPublicKey), hex(record.resetPublicKey));
    t.deepEqual(out.faulty, []);
    t.deepEqual(new Set(out.usedNodeIds), new Set(chosen.map((n) => n.id)));
  }
});

test("the recovered reset key signs a confirmation the record's reset key verifies", (t) => {
  const { nodes, record } = register([1, 2, 3], 2);
  const { blinded, state } = startRecovery("hunter2", record);
  const out = finishRecovery(state, record, evaluations(nodes, record, blinded));
  const ref = { clusterId: "c1", user: "alice", version: record.version };
  t.true(verifyConfirm(record.resetPublicKey, ref, 5n, signConfirm(out.resetPrivateKey, ref, 5n)));
});

test("a wrong password is OprfWrongPasswordError: conclusive with t+1 agreeing answers", (t) => {
  const { nodes, record } = register([1, 2, 3], 2);
  const { blinded, state } = startRecovery("hunter3", record);
  const err = t.throws(() => finishRecovery(state, record, evaluations(nodes, record, blinded)), { instanceOf: OprfWrongPasswordError });
  t.true(err?.conclusive);
  t.is(err?.agreeing, 3);
  const { blinded: b2, state: s2 } = startRecovery("hunter3", record);
  const err2 = t.throws(() => finishRecovery(s2, record, evaluations(nodes.slice(0, 2), record, b2)), { instanceOf: OprfWrongPasswordError });
  t.false(err2?.conclusive);
});

test("t+1 answers: a tampered evaluation is detected and skipped, whatever its position", (t) => {
  const { nodes, backupKey, record } = register([1, 2, 3], 2);
  for (let bad = 0; bad < 3; bad++) {
    const { blinded, state } = startRecovery("hunter2", record);
    const evs = evaluations(nodes, record, blinded);
    evs[bad] = { nodeId: nodes[bad]!.id, point: encodePoint(randomPoint()) };
    const out = finishRecovery(state, record, evs);
    t.is(hex(out.backupKey), hex(backupKey));
    t.deepEqual(out.faulty.map((f) => f.nodeId), [nodes[bad]!.id]);
    t.false(out.usedNodeIds.includes(nodes[bad]!.id));
  }
});

test("t+1 answers: a node evaluating with a wrong share, or negating its answer, is detected", (t) => {
  const { nodes, backupKey, record } = register([1, 2, 3, 4, 5], 3);
  const { blinded, state } = startRecovery("hunter2", record);
  const B = Point.fromBytes(blinded);
  const evs = evaluations(nodes.slice(0, 4), record, blinded);
  evs[1] = { nodeId: nodes[1]!.id, point: B.multiply(randomScalar()) }; // wrong share
  const out = finishRecovery(state, record, evs);
  t.is(hex(out.backupKey), hex(backupKey));
  t.deepEqual(out.faulty.map((f) => f.nodeId), [2]);
  const evs2 = evaluations(nodes.slice(0, 4), record, blinded);
  evs2[3] = { nodeId: 4, point: (evs2[3]!.point instanceof Uint8Array ? Point.fromBytes(evs2[3]!.point) : evs2[3]!.point).negate() };
  t.deepEqual(finishRecovery(state, record, evs2).faulty.map((f) => f.nodeId), [4]);
});

test("malformed answers (invalid point, identity, wrong length) are reported faulty, not fatal", (t) => {
  const { nodes, backupKey, record } = register([1, 2, 3, 4], 2);
  const { blinded, state } = startRecovery("hunter2", record);
  const evs = evaluations(nodes, record, blinded);
  evs[0] = { nodeId: 1, point: new Uint8Array(33) };
  evs[1] = { nodeId: 2, point: Point.ZERO };
  evs[2] = { nodeId: 3, point: new Uint8Array(12) };
  const err = t.throws(() => finishRecovery(state, record, evs), { instanceOf: InsufficientEvaluationsError });
  t.regex(err?.message ?? "", /need 2/);
  evs[2] = evaluations([nodes[2]!], record, blinded)[0]!;
  const out = finishRecovery(state, record, evs);
  t.is(hex(out.backupKey), hex(backupKey));
  t.deepEqual(out.faulty.map((f) => f.nodeId).sort(), [1, 2]);
  t.regex(out.faulty.map((f) => f.reason).join(";"), /not a valid P-256 point.*identity/);
});

test("a missing share (fewer than t answers) is InsufficientEvaluationsError", (t) => {
  const { nodes, record } = register([1, 2, 3], 2);
  const { blinded, state } = startRecovery("hunter2", record);
  t.throws(() => finishRecovery(state, record, evaluations(nodes.slice(0, 1), record, blinded)), { instanceOf: InsufficientEvaluationsError });
  t.throws(() => finishRecovery(state, record, []), { instanceOf: InsufficientEvaluationsError });
});

test("wrong password plus one faulty node: t+1 answers cannot tell, t+2 can", (t) => {
  const { nodes, record } = register([1, 2, 3, 4], 2);
  const { blinded, state } = startRecovery("wrong", record);
  const evs = evaluations(nodes, record, blinded);
  evs[0] = { nodeId: 1, point: randomPoint() };
  t.throws(() => finishRecovery(state, record, evs.slice(0, 3)), { instanceOf: OprfInconsistentEvaluationsError });
  const err = t.throws(() => finishRecovery(state, record, evs), { instanceOf: OprfWrongPasswordError });
  t.true(err?.conclusive);
  t.is(err?.agreeing, 3);
});

test("evaluations must come from distinct share holders", (t) => {
  const { nodes, record } = register([1, 2, 3], 2);
  const { blinded, state } = startRecovery("hunter2", record);
  const evs = evaluations(nodes, record, blinded);
  t.throws(() => finishRecovery(state, record, [evs[0]!, evs[0]!]), { instanceOf: InvalidArgumentError });
  t.throws(() => finishRecovery(state, record, [...evs, { nodeId: 9, point: randomPoint() }]), { instanceOf: InvalidArgumentError });
});

test("state from another record, or a record whose C was swapped, is RecoveryRecordMismatchError", (t) => {
  const a = register([1, 2, 3], 2);
  const b = register([1, 2, 3], 2);
  const { blinded, state } = startRecovery("hunter2", a.record);
  t.throws(() => finishRecovery(state, b.record, evaluations(a.nodes, a.record, blinded)), { instanceOf: RecoveryRecordMismatchError });
  const other = createRegistration({ clusterId: "c1", user: "alice", password: "x", backupKey: randomKey(), threshold: 2, guessLimit: 10, nodes: a.nodes, scrypt: TEST_SCRYPT });
  const swapped = { ...a.record, ciphertext: other.record.ciphertext };
  t.throws(() => finishRecovery(state, swapped, evaluations(a.nodes, a.record, blinded)), { instanceOf: RecoveryRecordMismatchError });
});

test("an overwrite carries an owner signature by the previous reset key over the new digest", (t) => {
  const first = register([1, 2, 3], 2);
  const second = createRegistration({
    clusterId: "c1",
    user: "alice",
    password: "new password",
    backupKey: first.backupKey,
    threshold: 2,
    guessLimit: 10,
    nodes: first.nodes,
    scrypt: TEST_SCRYPT,
    version: 2,
    previousResetPrivateKey: first.resetPrivateKey,
  });
  const ref = { clusterId: "c1", user: "alice", version: 1 };
  t.true(verifyOverwrite(first.record.resetPublicKey, ref, second.digest, second.ownerSignature!));
  t.false(verifyOverwrite(second.record.resetPublicKey, ref, second.digest, second.ownerSignature!));
});

test("createRegistration validates its inputs", (t) => {
  const nodes = makeNodes([1, 2]);
  const base = { clusterId: "c", user: "u", password: "p", backupKey: randomKey(), threshold: 2, guessLimit: 10, nodes, scrypt: TEST_SCRYPT };
  t.throws(() => createRegistration({ ...base, backupKey: new Uint8Array(16) }), { instanceOf: InvalidLengthError });
  t.throws(() => createRegistration({ ...base, threshold: 3 }), { instanceOf: InvalidArgumentError });
  t.throws(() => createRegistration({ ...base, guessLimit: 0 }), { instanceOf: InvalidArgumentError });
  t.throws(() => createRegistration({ ...base, password: "" }), { instanceOf: InvalidArgumentError });
  t.throws(() => createRegistration({ ...base, nodes: [nodes[0]!, { id: 2, agreementPublicKey: encodePoint(G, true).subarray(1) }] }), {
    instanceOf: InvalidLengthError,
  });
  t.throws(() => createRegistration({ ...base, version: 1, previousResetPrivateKey: randomScalar() }), { instanceOf: InvalidArgumentError });
});

test("the async variants (scrypt off the event loop) give a record the sync path recovers, and vice versa", async (t) => {
  const nodes = makeNodes([1, 2, 3]);
  const backupKey = randomKey();
  const input = { clusterId: "c1", user: "carol", password: "pw async", backupKey, threshold: 2, guessLimit: 5, nodes, scrypt: TEST_SCRYPT };
  const { record } = await createRegistrationAsync(input);
  const { blinded, state } = startRecovery("pw async", record);
  t.is(hex(finishRecovery(state, record, evaluations(nodes, record, blinded)).backupKey), hex(backupKey));
  const other = createRegistration(input);
  const started = await startRecoveryAsync("pw async", other.record);
  t.is(hex(finishRecovery(started.state, other.record, evaluations(nodes, other.record, started.blinded)).backupKey), hex(backupKey));
  await t.throwsAsync(createRegistrationAsync({ ...input, threshold: 4 }), { instanceOf: InvalidArgumentError });
});

test("recovery needs only the record's public part (what GetRecordInfo answers)", (t) => {
  const { nodes, backupKey, record } = register([1, 2, 3], 2);
  const publicPart = { ...record, shares: record.shares.map(({ nodeId, publicShare }) => ({ nodeId, publicShare })) };
  const { blinded, state } = startRecovery("hunter2", publicPart);
  t.is(hex(finishRecovery(state, publicPart, evaluations(nodes, record, blinded)).backupKey), hex(backupKey));
});
