// Backup key text form, and cluster descriptor loading and validation.
import test from "ava";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { G, encodePoint, nodeDescriptorMessage, randomScalar, signMessage } from "../../proto/crypto/index.js";
import {
  DEFAULT_DESCRIPTOR_PATH, DescriptorError, KeyFormatError, descriptorPath, descriptorToJson, formatKey, generateKey, loadDescriptor,
  parseDescriptor, parseKey,
} from "../../client/sdk/index.js";

test("a key prints as 16 groups of 4 hex digits and parses back", (t) => {
  const key = generateKey();
  const text = formatKey(key);
  t.regex(text, /^([0-9a-f]{4} ){15}[0-9a-f]{4}$/);
  t.deepEqual(parseKey(text), key);
  t.deepEqual(parseKey(text.replace(/ /g, "")), key, "plain 64 digits");
  t.deepEqual(parseKey(`  ${text.toUpperCase().replace(/ /g, "-")}\n`), key, "upper case, dashes, surrounding space");
});

test("two generated keys differ", (t) => {
  t.notDeepEqual(generateKey(), generateKey());
});

test("bad key text is refused without echoing it", (t) => {
  const text = formatKey(generateKey()).replace(/ /g, "");
  const short = t.throws(() => parseKey(text.slice(0, 63)), { instanceOf: KeyFormatError });
  t.regex(short.message, /64 hex digits \(got 63\)/);
  t.throws(() => parseKey(`${text}0`), { instanceOf: KeyFormatError, message: /got 65/ });
  const nonHex = t.throws(() => parseKey(`${text.slice(0, 10)}g${text.slice(11)}`), { instanceOf: KeyFormatError });
  t.regex(nonHex.message, /digit 11/);
  t.false(nonHex.message.includes(text.slice(0, 10)), "the key is not in the message");
  t.throws(() => parseKey(""), { instanceOf: KeyFormatError });
  t.throws(() => formatKey(new Uint8Array(31)), { instanceOf: KeyFormatError });
});

function node(clusterId: string, nodeId: number) {
  const identity = randomScalar();
  const entry = {
    nodeId, address: `127.0.0.1:${7000 + nodeId}`,
    agreementPublicKey: encodePoint(G.multiply(randomScalar()), false),
    identityPublicKey: encodePoint(G.multiply(identity), false),
  };
  return { ...entry, signature: signMessage(identity, nodeDescriptorMessage({ clusterId, ...entry })) };
}

function validJson(): Record<string, unknown> & { nodes: Record<string, unknown>[] } {
  const d = { version: 1 as const, clusterId: "c1", threshold: 2, nodes: [node("c1", 1), node("c1", 2), node("c1", 3)] };
  return JSON.parse(JSON.stringify(descriptorToJson(d))) as Record<string, unknown> & { nodes: Record<string, unknown>[] };
}

test("a valid descriptor parses; JSON round trip", (t) => {
  const json = validJson();
  const d = parseDescriptor(json);
  t.is(d.clusterId, "c1");
  t.is(d.threshold, 2);
  t.deepEqual(d.nodes.map((n) => n.nodeId), [1, 2, 3]);
  t.is(d.tlsCa, undefined);
  t.deepEqual(descriptorToJson(d), json);
});

function refused(t: import("ava").ExecutionContext, mutate: (j: ReturnType<typeof validJson>) => void, field: string | RegExp): void {
  const json = validJson();
  mutate(json);
  const err = t.throws(() => parseDescriptor(json), { instanceOf: DescriptorError });
  if (typeof field === "string") t.is(err.field, field, err.message);
  else t.regex(err.field, field);
}

test("a bad node signature is refused, naming the node", (t) => {
  refused(t, (j) => {
    const other = validJson().nodes[1] as Record<string, unknown>;
    (j.nodes[1] as Record<string, unknown>).signature = other.signature;
  }, "nodes[1].signature");
  refused(t, (j) => {
    (j.nodes[2] as Record<string, unknown>).address = "127.0.0.1:9999"; // signed address changed
  }, "nodes[2].signature");
  // Signed for another cluster id.
  const json = validJson();
  json.clusterId = "c2";
  t.throws(() => parseDescriptor(json), { instanceOf: DescriptorError, message: /nodes\[0\]\.signature/ });
});

test("missing and malformed fields are refused, naming the field", (t) => {
  refused(t, (j) => delete j.clusterId, "clusterId");
  refused(t, (j) => (j.version = 2), "version");
  refused(t, (j) => (j.threshold = 4), "threshold");
  refused(t, (j) => (j.threshold = 0), "threshold");
  refused(t, (j) => (j.nodes = []), "nodes");
  refused(t, (j) => delete (j.nodes[0] as Record<string, unknown>).identityPublicKey, "nodes[0].identityPublicKey");
  refused(t, (j) => ((j.nodes[1] as Record<string, unknown>).agreementPublicKey = "04abcd"), "nodes[1].agreementPublicKey");
  refused(t, (j) => ((j.nodes[1] as Record<string, unknown>).nodeId = 0), "nodes[1].nodeId");
  refused(t, (j) => ((j.nodes[1] as Record<string, unknown>).address = "no-port"), "nodes[1].address");
  refused(t, (j) => ((j.nodes[0] as Record<string, unknown>).signature = "zz"), "nodes[0].signature");
  refused(t, (j) => (j.nodes[2] = j.nodes[0] as Record<string, unknown>), "nodes[2].nodeId");
  refused(t, (j) => (j.tls = { ca: "not a pem" }), "tls.ca");
  t.throws(() => parseDescriptor([]), { instanceOf: DescriptorError });
});

test("compressed agreement keys are refused: the descriptor pins 65-byte keys", (t) => {
  refused(t, (j) => {
    const n = j.nodes[0] as Record<string, unknown>;
    n.agreementPublicKey = Buffer.from(encodePoint(G.multiply(randomScalar()), true)).toString("hex");
  }, "nodes[0].agreementPublicKey");
});

test("loadDescriptor reads a file and reports a missing or non-JSON one", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "bkv-desc-"));
  try {
    await writeFile(join(dir, "ok.json"), JSON.stringify(validJson()));
    t.is(loadDescriptor(join(dir, "ok.json")).nodes.length, 3);
    await writeFile(join(dir, "bad.json"), "{");
    t.throws(() => loadDescriptor(join(dir, "bad.json")), { instanceOf: DescriptorError, message: /not JSON/ });
    t.throws(() => loadDescriptor(join(dir, "none.json")), { instanceOf: DescriptorError, message: /no such file/ });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("descriptor path: --cluster, then $BKV_CLUSTER, then the local default", (t) => {
  t.is(descriptorPath("x.json", { BKV_CLUSTER: "y.json" }), "x.json");
  t.is(descriptorPath(undefined, { BKV_CLUSTER: "y.json" }), "y.json");
  t.is(descriptorPath(undefined, {}), DEFAULT_DESCRIPTOR_PATH);
  t.is(DEFAULT_DESCRIPTOR_PATH, "data/local/cluster.json");
});
