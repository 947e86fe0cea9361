import test from "ava";
import { normalizeLowS } from "../../proto/crypto/index.js";
import { type NodeAnnouncement, VaultStateMachine, verifyAnnouncement } from "../../node/vault/index.js";
import { CLUSTER, Harness, announcement, expectError, expectOk, hex, makeNode, contentDigest } from "../../testkit/vault.js";

const n1 = makeNode(1);
const n2 = makeNode(2);
const n1Other = makeNode(1, 99n); // same id, another token

function announce(h: Harness, node: NodeAnnouncement) {
  const out = h.apply({ kind: "announce", node });
  return out;
}

test("a verified announcement is stored and listed by node id; announcements carry no request id", (t) => {
  const h = new Harness();
  const out = announce(h, announcement(n2));
  t.is(out.requestId, null);
  expectOk(t, out.result, "announce");
  expectOk(t, announce(h, announcement(n1)).result, "announce");
  t.deepEqual(h.sm.nodes().map((n) => n.nodeId), [1, 2]);
  const a = h.sm.nodes()[0];
  t.is(a?.clientAddress, "127.0.0.1:7001");
  t.true(verifyAnnouncement(CLUSTER, a as NodeAnnouncement));
  t.false(verifyAnnouncement("other-cluster", a as NodeAnnouncement));
});

test("the first announcement of an id wins: other keys are refused, the same keys may move the address", (t) => {
  const h = new Harness();
  expectOk(t, announce(h, announcement(n1)).result, "announce");
  const twin = VaultStateMachine.restore({ clusterId: CLUSTER }, h.sm.snapshot());
  expectError(t, announce(h, announcement(n1Other)).result, "PERMISSION_DENIED", "NODE_ID_TAKEN");
  twin.skip(h.index);
  t.is(hex(h.sm.digest()), hex(twin.digest()), "the refused announcement changed nothing but the index");
  t.is(hex(h.sm.nodes()[0]?.identityPublicKey ?? new Uint8Array()), hex(n1.identityPublicKey));
  expectOk(t, announce(h, announcement(n1, "10.0.0.9:443")).result, "announce");
  t.is(h.sm.nodes()[0]?.clientAddress, "10.0.0.9:443");
  t.true(verifyAnnouncement(CLUSTER, h.sm.nodes()[0] as NodeAnnouncement));
  t.is(h.sm.nodes().length, 1);
});

test("an announcement not signed by its own identity key is refused and changes nothing", (t) => {
  const h = new Harness();
  const before = hex(contentDigest(h.sm));
  expectError(t, announce(h, announcement(n1, "127.0.0.1:7001", n2.identityPrivateKey)).result, "PERMISSION_DENIED", "BAD_SIGNATURE");
  const good = announcement(n1);
  expectError(t, announce(h, { ...good, clientAddress: "127.0.0.1:9999" }).result, "PERMISSION_DENIED", "BAD_SIGNATURE");
  expectError(t, announce(h, { ...good, agreementPublicKey: n2.agreementPublicKey }).result, "PERMISSION_DENIED", "BAD_SIGNATURE");
  t.is(hex(contentDigest(h.sm)), before);
  t.deepEqual(h.sm.nodes(), []);
});

test("a token's high-S signature is accepted", (t) => {
  const h = new Harness();
  const good = announcement(n1);
  // noble signs low-S; flip to the other half as a token may produce.
  const s = BigInt("0x" + hex(good.signature.subarray(32)));
  const n = BigInt("0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
  const high = new Uint8Array(64);
  high.set(good.signature.subarray(0, 32));
  high.set(Buffer.from((n - s).toString(16).padStart(64, "0"), "hex"), 32);
  t.is(hex(normalizeLowS(high)), hex(good.signature));
  expectOk(t, announce(h, { ...good, signature: high }).result, "announce");
});
