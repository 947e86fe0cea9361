// Certified announcements (kind 7, docs/vault.md §3): in a cluster whose
// replicated state holds the CA, node id N is announced only with an mTLS
// certificate the CA issued to node-N whose key signs the announcement;
// kind 5 (identity key only) is refused. Real certificates (test/vault/certs.ts).
import test, { type ExecutionContext } from "ava";
import { createHash } from "node:crypto";
import { InvalidArgumentError } from "../../proto/crypto/index.js";
import { CorruptSnapshotError, type NodeAnnouncement, VaultStateMachine, decodeCommand, encodeCommand } from "../../node/vault/index.js";
import { metaKey, nodeKey } from "../../node/vault/keys.js";
import { encodeNode } from "../../node/vault/values.js";
import { editSnapshot, encodeLegacySnapshot } from "../../testkit/vault-store.js";
import { CLUSTER, Harness, legacyHarness, announcement, expectError, expectOk, hex, makeNode, contentDigest } from "../../testkit/vault.js";
import { CLUSTER_CA, OTHER_CA, SELF_SIGNED_NODE_1, certifiedBy, certify } from "./certs.js";

const n1 = makeNode(1);
const node1Cert = certifiedBy(CLUSTER_CA.nodes.get(1));
const node2Cert = certifiedBy(CLUSTER_CA.nodes.get(2));
const withCa = () => new Harness(new VaultStateMachine({ clusterId: CLUSTER, clusterCa: CLUSTER_CA.ca }));
const announce = (h: Harness, node: NodeAnnouncement) => h.result({ kind: "announce", node });

test("a certificate of the cluster CA for node-1, whose key signs, admits node 1; it survives snapshot and restore", (t) => {
  const h = withCa();
  expectOk(t, announce(h, certify(announcement(n1), node1Cert)), "announce");
  const stored = h.sm.nodes()[0];
  t.is(stored?.nodeId, 1);
  t.is(hex(stored?.certified?.certificate ?? new Uint8Array()), hex(node1Cert.certificate));
  const restored = VaultStateMachine.restore({ clusterId: CLUSTER }, h.sm.snapshot());
  t.is(hex(restored.digest()), hex(h.sm.digest()), "the same state digest after restore");
  t.is(hex(restored.clusterCa ?? new Uint8Array()), hex(CLUSTER_CA.ca));
  const again = new Harness(restored);
  again.index = restored.appliedIndex;
  expectOk(t, announce(again, certify(announcement(n1, "10.0.0.9:443"), node1Cert)), "announce");
  t.is(restored.nodes()[0]?.clientAddress, "10.0.0.9:443", "the certified node moved its address");
});

/** Applies a refused announcement; checks its refusal and that it changed nothing but the applied index. */
function refused(t: ExecutionContext, node: NodeAnnouncement, code: "PERMISSION_DENIED" | "INVALID_ARGUMENT", reason: "BAD_SIGNATURE" | "INVALID_ARGUMENT", message: RegExp): void {
  const h = withCa();
  const before = hex(contentDigest(h.sm));
  const r = announce(h, node);
  expectError(t, r, code, reason);
  if (!r.ok) t.regex(r.message, message);
  t.is(hex(contentDigest(h.sm)), before);
  t.deepEqual(h.sm.nodes(), []);
}

test("with a CA, an announcement without certificate (kind 5) is refused: the pre-announcement of another node's id", (t) => {
  refused(t, announcement(n1), "PERMISSION_DENIED", "BAD_SIGNATURE", /carries no certificate/);
});

test("a foreign (self-signed) certificate naming node-1 is refused", (t) => {
  refused(t, certify(announcement(n1), SELF_SIGNED_NODE_1), "PERMISSION_DENIED", "BAD_SIGNATURE", /not issued by the cluster CA/);
});

test("a certificate of another CA for node-1 is refused", (t) => {
  refused(t, certify(announcement(n1), certifiedBy(OTHER_CA.nodes.get(1))), "PERMISSION_DENIED", "BAD_SIGNATURE", /not issued by the cluster CA/);
});

test("the cluster CA's certificate for node-2 does not admit node 1", (t) => {
  refused(t, certify(announcement(n1), node2Cert), "PERMISSION_DENIED", "BAD_SIGNATURE", /does not name node-1/);
});

test("node-1's certificate with a signature by another key, or over other fields, is refused", (t) => {
  refused(t, certify(announcement(n1), node1Cert, node2Cert.key), "PERMISSION_DENIED", "BAD_SIGNATURE", /not signed by its certificate's key/);
  const elsewhere = certify(announcement(n1, "10.0.0.1:1"), node1Cert).certified;
  refused(t, { ...announcement(n1), certified: elsewhere }, "PERMISSION_DENIED", "BAD_SIGNATURE", /not signed by its certificate's key/);
  const cert = node1Cert.certificate;
  refused(t, { ...announcement(n1), certified: { certificate: cert, signature: Uint8Array.of(0x30, 0x00) } }, "PERMISSION_DENIED", "BAD_SIGNATURE", /not signed/);
});

test("garbage DER is refused as an invalid argument, never a throw from apply", (t) => {
  const good = certify(announcement(n1), node1Cert).certified;
  if (good === undefined) throw new Error("not certified");
  refused(t, { ...announcement(n1), certified: { ...good, certificate: Uint8Array.of(0x30, 0x82, 0x01) } }, "INVALID_ARGUMENT", "INVALID_ARGUMENT", /not a DER X.509 certificate/);
  const truncated = good.certificate.subarray(0, good.certificate.length - 1);
  refused(t, { ...announcement(n1), certified: { ...good, certificate: truncated } }, "INVALID_ARGUMENT", "INVALID_ARGUMENT", /not a DER X.509 certificate/);
});

test("a certificate or signature beyond the bounds does not encode, and its raw payload is refused on apply", (t) => {
  const node = certify(announcement(n1), node1Cert);
  const big = { ...node, certified: { certificate: new Uint8Array(4097), signature: node.certified?.signature ?? new Uint8Array(1) } };
  t.throws(() => encodeCommand({ kind: "announce", node: big }), { instanceOf: InvalidArgumentError, message: /node certificate must be 1 to 4096 bytes/ });
  const ok = encodeCommand({ kind: "announce", node });
  const sigLen = node.certified?.signature.length ?? 0;
  const empty = Uint8Array.of(...ok.subarray(0, ok.length - sigLen - 2), 0, 0); // an empty certificate signature
  const h = withCa();
  expectError(t, h.result(empty), "INVALID_ARGUMENT", "INVALID_ARGUMENT");
  t.deepEqual(h.sm.nodes(), []);
});

test("kind 7 encodes and decodes exactly; kind 5 still does", (t) => {
  const node = certify(announcement(n1), node1Cert);
  const bytes = encodeCommand({ kind: "announce", node });
  t.is(bytes[5], 7);
  t.deepEqual(decodeCommand(bytes), { kind: "announce", node });
  const plain = encodeCommand({ kind: "announce", node: announcement(n1) });
  t.is(plain[5], 5);
  t.deepEqual(decodeCommand(plain), { kind: "announce", node: announcement(n1) });
});

test("without a CA in the state (a cluster bootstrapped before), kind 5 applies as before and kind 7 is refused", (t) => {
  const h = new Harness();
  t.is(h.sm.clusterCa, null);
  expectError(t, announce(h, certify(announcement(n1), node1Cert)), "INVALID_ARGUMENT", "INVALID_ARGUMENT");
  expectOk(t, announce(h, announcement(n1)), "announce");
});

test("the CA must be a CA certificate; a restored state is checked against its own CA", (t) => {
  t.throws(() => new VaultStateMachine({ clusterId: CLUSTER, clusterCa: node1Cert.certificate }), { instanceOf: InvalidArgumentError, message: /not a CA/ });
  t.throws(() => new VaultStateMachine({ clusterId: CLUSTER, clusterCa: Uint8Array.of(1, 2, 3) }), { instanceOf: InvalidArgumentError });
  const h = withCa();
  expectOk(t, announce(h, certify(announcement(n1), node1Cert)), "announce");
  const snap = h.sm.snapshot();
  const swapped = editSnapshot(CLUSTER, snap, (s) => s.write(metaKey("ca"), OTHER_CA.ca));
  t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, swapped), { instanceOf: CorruptSnapshotError, message: /node 1's announcement does not verify: .*not issued by the cluster CA/ });
  const uncertified = editSnapshot(CLUSTER, snap, (s) => s.write(nodeKey(1), encodeNode(announcement(n1))));
  t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, uncertified), { instanceOf: CorruptSnapshotError, message: /carries no certificate/ });
});

test("a legacy format-2 snapshot (no CA, no certificates) is converted into the same store as the state it came from", (t) => {
  const h = legacyHarness(); // legacy formats carry no bound-shares flag
  const node = announcement(n1);
  expectOk(t, announce(h, node), "announce");
  const v3 = encodeLegacySnapshot(h.sm);
  // Format 2 is format 3 without the (empty) CA after the request-id capacity and the two empty lp16 after each node.
  const caAt = 4 + 1 + 2 + CLUSTER.length + 8 + 4;
  const nodeEnd = Buffer.from(v3).indexOf(Buffer.from(node.signature)) + node.signature.length;
  const body = Uint8Array.of(...v3.subarray(0, caAt), ...v3.subarray(caAt + 2, nodeEnd), ...v3.subarray(nodeEnd + 4, v3.length - 32));
  body[4] = 2;
  const v2 = Uint8Array.of(...body, ...createHash("sha256").update(body).digest());
  const restored = VaultStateMachine.restore({ clusterId: CLUSTER }, v2);
  t.is(restored.clusterCa, null);
  t.deepEqual(restored.nodes(), [node]);
  t.is(hex(restored.snapshot()), hex(h.sm.snapshot()));
  t.is(hex(restored.digest()), hex(h.sm.digest()));
});
