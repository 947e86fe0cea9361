// Byte-level pins of the v1 formats of docs/protocol.md, checked where
// possible against independent implementations (node:crypto HKDF and SHA-256,
// @noble/hashes scrypt), and a bkv v1 known-answer vector for other clients.
import test from "ava";
import { createHash, hkdfSync } from "node:crypto";
import { scrypt as nobleScrypt } from "@noble/hashes/scrypt.js";
import {
  BKV_V1,
  backupKeyAad,
  blind,
  blindEvaluate,
  bytesToBigInt,
  confirmMessage,
  createRegistration,
  deleteMessage,
  deriveKeys,
  encodePoint,
  encodeRecord,
  evaluationSigningMessage,
  finalize,
  G,
  ORDER,
  hardenPassword,
  hashToGroup,
  overwriteMessage,
  recordDigest,
  unblind,
} from "../../proto/crypto/index.js";
import { TEST_SCRYPT, hex, makeNodes, randomKey } from "../../testkit/protocol.js";

const ascii = (s: string) => Buffer.from(s, "utf8").toString("hex");
const lp = (s: string) => Buffer.from(s, "utf8").length.toString(16).padStart(4, "0") + ascii(s);

test("reset messages: lp16(tag) || lp16(cluster) || lp16(user) || u32 version || ...", (t) => {
  t.is(hex(confirmMessage("c1", "alice", 7, 9n)), lp("bkv-v1/reset/confirm") + lp("c1") + lp("alice") + "00000007" + "0000000000000009");
  t.is(hex(deleteMessage("c1", "alice", 7)), lp("bkv-v1/reset/delete") + lp("c1") + lp("alice") + "00000007");
  const digest = new Uint8Array(32).fill(0xee);
  t.is(hex(overwriteMessage("c1", "alice", 7, digest)), lp("bkv-v1/reset/overwrite") + lp("c1") + lp("alice") + "00000007" + "ee".repeat(32));
});

test("evaluation message: tag, cluster, user, version, attempt, node, B, k_i·B (compressed)", (t) => {
  const B = G.multiply(5n);
  const Z = G.multiply(7n);
  const msg = evaluationSigningMessage({ clusterId: "c", user: "u", version: 2, attemptId: 300n, nodeId: 3, blinded: encodePoint(B, false), evaluated: Z });
  const expected = lp("bkv-v1/evaluation") + lp("c") + lp("u") + "00000002" + "000000000000012c" + "0000000000000003" + hex(encodePoint(B)) + hex(encodePoint(Z));
  t.is(hex(msg), expected);
});

test("backup key aad: lp16('bkv-v1/backup-key') || lp16(user) || u32 version", (t) => {
  t.is(hex(backupKeyAad("bob", 1)), lp("bkv-v1/backup-key") + lp("bob") + "00000001");
});

test("record encoding v1 starts with magic, version, user, version, t, guess limit, count", (t) => {
  const nodes = makeNodes([2, 1]);
  const { record, digest } = createRegistration({ clusterId: "c", user: "bob", password: "pw", backupKey: randomKey(), threshold: 2, guessLimit: 10, nodes, scrypt: TEST_SCRYPT });
  const enc = hex(encodeRecord(record));
  t.true(enc.startsWith("626b765201" + lp("bob") + "00000001" + "0002" + "0a" + "0002" + "0000000000000001"));
  t.true(enc.endsWith(hex(record.resetPublicKey) + hex(record.salt) + "00000400" + "00000008" + "00000001"));
  t.is(hex(digest), createHash("sha256").update(encodeRecord(record)).digest("hex"));
  t.is(hex(recordDigest(record)), hex(digest));
});

// bkv v1 known-answer vector (computed by this implementation, checked step
// by step against independent primitives below; pins the v1 derivation).
const KAT = {
  password: "correct horse battery staple",
  salt: "a5".repeat(16),
  scrypt: { N: 1024, r: 8, p: 1 },
  k: "159749d750713afe245d2d39ccfaae8381c53ce92d098a9375ee70739c7ac0bf",
  blind: "3338fa65ec36e0290022b48eb562889d89dbfa691d1cde91517fa222ed7ad364",
  pwh: "b34bc26f92e517a5ec0df21ef0f865f846dcef86ce4fc26f7e47464161baf287",
  hashToGroup: "03b26f9a462d7376e6336e3b783f8d662a9657e0f0343933d2e3577738e0584ab6",
  blinded: "037b01f7189cc8d5ebe18bb2cd1941c82b4f1e2f45e1dadf4006a277f838202d30",
  evaluated: "032936a46f8a473c3175483d4de2bc260487e2781d3fc00760c92086767b0a2ff6",
  y: "ffd64197ba80e33a82e83d92f288b97d5844900be760be3701dae1a90ad1767e",
  encKey: "1911416338fb1af164e4d051ed3977b1f780c4a2ce92d64af2186a6a960b85c1",
  resetPrivateKey: "e1d0922dd4b8006b4e52546d7d7cf2de4f043202a6ecb7e4c253c476860360a6",
  resetPublicKey: "03dff67e3308120b8a61ee7a3e60386ad98c973dd182fc90288a84676c6d9aca79",
};

test("bkv v1 known-answer vector, cross-checked with independent primitives", (t) => {
  const salt = Buffer.from(KAT.salt, "hex");
  const pwh = hardenPassword(KAT.password, salt, KAT.scrypt);
  t.is(hex(pwh), KAT.pwh);
  t.is(hex(nobleScrypt(Buffer.from(KAT.password), salt, { ...KAT.scrypt, dkLen: 32 })), KAT.pwh);
  t.is(hex(encodePoint(hashToGroup(pwh, BKV_V1))), KAT.hashToGroup);
  const r = bytesToBigInt(Buffer.from(KAT.blind, "hex"));
  const b = blind(pwh, BKV_V1, r);
  t.is(hex(encodePoint(b.blinded)), KAT.blinded);
  const Z = blindEvaluate(bytesToBigInt(Buffer.from(KAT.k, "hex")), b.blinded);
  t.is(hex(encodePoint(Z)), KAT.evaluated);
  const N = unblind(r, Z);
  const y = finalize(pwh, N);
  t.is(hex(y), KAT.y);
  // Finalize = SHA-256(I2OSP(32,2) || pwh || I2OSP(33,2) || N || "Finalize")
  const manual = createHash("sha256").update(Buffer.from("0020" + KAT.pwh + "0021" + hex(encodePoint(N)) + ascii("Finalize"), "hex")).digest("hex");
  t.is(manual, KAT.y);
  const keys = deriveKeys(y);
  t.is(hex(keys.encKey), KAT.encKey);
  t.is(Buffer.from(hkdfSync("sha256", y, new Uint8Array(0), "bkv-v1/enc-key", 32)).toString("hex"), KAT.encKey);
  const seed = bytesToBigInt(new Uint8Array(hkdfSync("sha256", y, new Uint8Array(0), "bkv-v1/reset-key", 48)));
  t.is((seed % (ORDER - 1n)) + 1n, keys.resetPrivateKey);
  t.is(keys.resetPrivateKey.toString(16).padStart(64, "0"), KAT.resetPrivateKey);
  t.is(hex(keys.resetPublicKey), KAT.resetPublicKey);
});
