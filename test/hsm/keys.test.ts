// Nothing secret can be read out of the token, and identity signatures verify.
import test from "ava";
import { createPublicKey, verify as nodeVerify } from "node:crypto";
import { p256 } from "@noble/curves/nist.js";
import pkcs11js from "pkcs11js";
import { Hsm } from "../../node/hsm/index.js";
import { KEK_TEMPLATE, SHARE_TEMPLATE, ecdh, parseEvaluationInput } from "../../node/hsm/evaluate.js";
import { N, Point, createToken, randomPoint, randomScalar, wrapShare, type TestToken } from "../../testkit/hsm.js";

const P = pkcs11js;
let token: TestToken;
let hsm: Hsm;

test.before(async () => {
  token = createToken("keys");
  hsm = await Hsm.open(token.config, { sessionKeyCopies: true });
});

test.after.always(() => {
  hsm?.close();
  token?.remove();
});

type Handle = pkcs11js.Handle;
const bool = (v: Buffer | undefined) => v !== undefined && v.length > 0 && v[0] !== 0;

function readAttr(s: Handle, key: Handle, type: number): Buffer | undefined {
  return hsm.token.p11.C_GetAttributeValue(s, key, [{ type }])[0]?.value;
}

function sessionObjects(s: Handle): Handle[] {
  const p11 = hsm.token.p11;
  p11.C_FindObjectsInit(s, [{ type: P.CKA_TOKEN, value: false }, { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY }]);
  try { return p11.C_FindObjects(s, 100); } finally { p11.C_FindObjectsFinal(s); }
}

function assertSecret(t: import("ava").ExecutionContext, s: Handle, key: Handle, what: string): void {
  const err = t.throws(() => readAttr(s, key, P.CKA_VALUE), undefined, `${what}: CKA_VALUE must be refused`);
  t.regex(err?.message ?? "", /CKR_ATTRIBUTE_SENSITIVE/, what);
  t.true(bool(readAttr(s, key, P.CKA_SENSITIVE)), `${what} is CKA_SENSITIVE`);
  t.false(bool(readAttr(s, key, P.CKA_EXTRACTABLE)), `${what} is not CKA_EXTRACTABLE`);
  t.true(bool(readAttr(s, key, P.CKA_PRIVATE)), `${what} is CKA_PRIVATE`);
}

test.serial("the agreement and identity keys and their session copies are unreadable and private", async (t) => {
  await hsm.token.withSession((s) => {
    const { agreement, identity } = hsm.keys;
    assertSecret(t, s, agreement.privateKey, "agreement key");
    assertSecret(t, s, identity.privateKey, "identity key");
    t.true(bool(readAttr(s, agreement.privateKey, P.CKA_TOKEN)));
    t.true(bool(readAttr(s, agreement.privateKey, P.CKA_NEVER_EXTRACTABLE)));
    t.true(bool(readAttr(s, agreement.privateKey, P.CKA_DERIVE)));
    t.false(bool(readAttr(s, agreement.privateKey, P.CKA_SIGN)));
    t.true(bool(readAttr(s, identity.privateKey, P.CKA_SIGN)));
    t.false(bool(readAttr(s, identity.privateKey, P.CKA_DERIVE)));
    const copies = sessionObjects(s);
    t.true(copies.length > 0, "session copies exist");
    for (const c of copies) assertSecret(t, s, c, "session copy of the agreement key");
  });
});

test.serial("the key usage of the token keys cannot be widened to extraction", async (t) => {
  await hsm.token.withSession((s) => {
    const err = t.throws(() => hsm.token.p11.C_SetAttributeValue(s, hsm.keys.agreement.privateKey,
      [{ type: P.CKA_EXTRACTABLE, value: true }]));
    t.regex(err?.message ?? "", /CKR_ATTRIBUTE_(READ_ONLY|VALUE_INVALID)/);
  });
});

test.serial("an unwrapped share is unreadable, sensitive and non-extractable", async (t) => {
  const k = randomScalar();
  const input = parseEvaluationInput(wrapShare(hsm.agreementPublicKey, k), randomPoint().toBytes(true),
    Point.BASE.multiply(k).toBytes(true));
  const p11 = hsm.token.p11;
  await hsm.token.withSession((s) => {
    const kek = p11.C_DeriveKey(s, ecdh(input.ephemeral), hsm.keys.agreement.privateKey, KEK_TEMPLATE);
    const share = p11.C_UnwrapKey(s, { mechanism: 0x210a }, kek, input.wrapped, SHARE_TEMPLATE);
    try {
      assertSecret(t, s, kek, "KEK");
      assertSecret(t, s, share, "unwrapped share");
      t.false(bool(readAttr(s, share, P.CKA_TOKEN)), "the share is a session object");
    } finally {
      p11.C_DestroyObject(s, share);
      p11.C_DestroyObject(s, kek);
    }
  });
});

test.serial("identity signatures verify with noble and node:crypto and are low-S", async (t) => {
  const spki = createPublicKey({
    key: {
      kty: "EC", crv: "P-256",
      x: Buffer.from(hsm.identityPublicKey.subarray(1, 33)).toString("base64url"),
      y: Buffer.from(hsm.identityPublicKey.subarray(33)).toString("base64url"),
    },
    format: "jwk",
  });
  for (let i = 0; i < 24; i++) {
    const msg = new TextEncoder().encode(`evaluation response ${i}`);
    const sig = await hsm.sign(msg);
    t.is(sig.length, 64);
    t.true(p256.verify(sig, msg, hsm.identityPublicKey, { prehash: true, lowS: true }), "noble, lowS required");
    t.true(nodeVerify("sha256", msg, { key: spki, dsaEncoding: "ieee-p1363" }, sig), "node:crypto");
    const s = BigInt("0x" + Buffer.from(sig.subarray(32)).toString("hex"));
    t.true(s <= N / 2n);
  }
  t.false(p256.verify(await hsm.sign(new Uint8Array([1])), new Uint8Array([2]), hsm.identityPublicKey));
});

test.serial("signatures and evaluations interleave on the session pool", async (t) => {
  const k = randomScalar();
  const B = randomPoint();
  const blob = wrapShare(hsm.agreementPublicKey, k);
  const K = Point.BASE.multiply(k).toBytes(true);
  const ops = Array.from({ length: 24 }, (_, i) => i % 2 === 0
    ? hsm.sign(Uint8Array.of(i)).then((sig) => p256.verify(sig, Uint8Array.of(i), hsm.identityPublicKey, { prehash: true, lowS: true }))
    : hsm.evaluate(blob, B.toBytes(true), K).then((out) => Buffer.from(out).equals(Buffer.from(B.multiply(k).toBytes(true)))));
  t.deepEqual(await Promise.all(ops), ops.map(() => true));
});
