// Undecodable request bodies on a real 3-node cluster (issue 10, defects 1
// and 2): every one answers INVALID_ARGUMENT with a clear message, on the
// client, admin and peer ports; each is logged without its bytes and counted
// in bkv_grpc_requests_total with code INVALID_ARGUMENT (a flood: lines throttled). Compressed bodies
// (gzip) are inflated and decoded as strictly, and one that inflates past
// the port's message limit (a "zip bomb") answers RESOURCE_EXHAUSTED.
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { create, toBinary } from "@bufbuild/protobuf";
import { StreamRequestSchema } from "../../proto/gen/bkv/v1/raft_pb.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { DecodeError, decodeStrict } from "../../proto/strict.js";
import { LocalCluster, waitFor, reportLogsOnFailure } from "../../testkit/cluster.js";
import { RawNode, REQUEST_METHODS, counterValue, type RequestMethod } from "./raw.js";

reportLogsOnFailure(test);

let cluster: LocalCluster;
let raw: RawNode;

test.before(async () => {
  cluster = await LocalCluster.start();
  raw = new RawNode(cluster, 1, 2);
});

test.after.always(async () => {
  raw?.close();
  await cluster?.close();
});

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s/g, ""), "hex"));
const method = (name: string): RequestMethod => {
  const m = REQUEST_METHODS.find((x) => x.name === name);
  if (m === undefined) throw new Error(`no method ${name}`);
  return m;
};

/** [method, body, what it breaks]. Each body is checked to be undecodable before it is sent. */
const CASES: ReadonlyArray<readonly [string, string, string]> = [
  ["GetRecordInfo", "0a 05 61 62", "a truncated length"],
  ["GetRecordInfo", "0a 02 ff fe", "invalid UTF-8"],
  ["BeginRecovery", "12 02 c0 80", "overlong UTF-8"],
  ["GetRecordInfo", "0f 00", "wire type 7"],
  ["GetRecordInfo", "02 00", "field number 0"],
  ["Evaluate", "10 ff ff ff ff ff ff ff ff ff ff 01", "an 11-byte varint"],
  ["GetRecordInfo", "0a 80 80 80 80 80 80 80 80 80 01", "a length of 2^63"],
  ["GetClusterDescriptor", "08 01 10 02", "unknown fields"],
  ["Register", "9c 4f d2 11 07 e3 5a 00 c8 1b 66 ff 02 94 3e 71", "random bytes"],
  ["GetClusterStatus", "0f", "wire type 7 (admin)"],
  ["AddLearner", "08 ff ff", "a truncated varint (admin)"],
  ["TransferLeadership", "a2 06 00", "an unknown field (admin)"],
];

test.serial("every undecodable unary request answers INVALID_ARGUMENT, logged and counted", async (t) => {
  const before = await cluster.metricsOf(1);
  for (const [name, body, what] of CASES) {
    const m = method(name);
    t.throws(() => decodeStrict(m.input, hex(body)), { instanceOf: DecodeError }, `${what} is undecodable`);
    const out = await raw.request(m, hex(body));
    t.is(out.code, grpc.status.INVALID_ARGUMENT, `${name} with ${what}: ${out.details}`);
    t.is(out.reason, ErrorReason.INVALID_ARGUMENT, `${name} with ${what}`);
    t.regex(out.details, new RegExp(`is not a valid ${m.input.typeName.replace(/\./g, "\\.")}: `), `${name} with ${what}`);
  }
  const after = await cluster.metricsOf(1);
  for (const name of new Set(CASES.map(([n]) => n))) {
    const count = (x: string) => counterValue(x, "bkv_grpc_requests_total", { method: name, code: "INVALID_ARGUMENT" });
    t.is(count(after) - count(before), CASES.filter(([n]) => n === name).length, `${name} counted`);
  }
  const refused = cluster.logOf(1).split("\n").filter((l) => l.includes("undecodable request refused"));
  for (const name of new Set(CASES.map(([n]) => n))) t.true(refused.some((l) => l.includes(`/${name}"`)), `a line for ${name}`);
  for (const line of refused) {
    const entry = JSON.parse(line) as Record<string, unknown>;
    t.is(entry.level, "warn");
    t.is(typeof entry.bytes, "number");
    t.notRegex(line, /61 ?62|ff ?fe|c0 ?80|\\u00/i, "no payload bytes in the log");
  }
});

test.serial("a flood of undecodable requests is counted in full, and logged at most once per method and 10 s", async (t) => {
  const m = method("GetRecordInfo");
  const lines = () => cluster.logOf(1).split("\n").filter((l) => l.includes("undecodable request refused") && l.includes(`/${m.name}"`)).length;
  const before = await cluster.metricsOf(1);
  const linesBefore = lines();
  for (let i = 0; i < 200; i++) t.is((await raw.request(m, hex("0a 05 61 62"))).code, grpc.status.INVALID_ARGUMENT);
  const after = await cluster.metricsOf(1);
  const count = (x: string) => counterValue(x, "bkv_grpc_requests_total", { method: m.name, code: "INVALID_ARGUMENT" });
  t.is(count(after) - count(before), 200, "every one counted");
  t.true(lines() - linesBefore <= 1, `${lines() - linesBefore} new lines for 200 refusals`);
});

test.serial("an undecodable frame on the peer stream answers INVALID_ARGUMENT, before or after the header; the cluster stays healthy", async (t) => {
  const path = "/bkv.v1.RaftService/Stream";
  const before = await cluster.metricsOf(1);
  for (const frame of ["0f", "0a 05 61 62", "12 03 0a 01 ff"]) {
    const out = await raw.stream([hex(frame)]);
    t.is(out.code, grpc.status.INVALID_ARGUMENT, `${frame}: ${out.details}`);
    t.regex(out.details, /is not a valid bkv\.v1\.StreamRequest/);
  }
  const header = toBinary(StreamRequestSchema, create(StreamRequestSchema, { frame: { case: "header", value: { clusterId: cluster.clusterId, from: 2n, to: 1n } } }));
  const afterHeader = await raw.stream([header, hex("12 02 0a 05")]);
  t.is(afterHeader.code, grpc.status.INVALID_ARGUMENT, afterHeader.details);
  const after = await cluster.metricsOf(1);
  const count = (x: string) => counterValue(x, "bkv_grpc_requests_total", { method: "Stream", code: "INVALID_ARGUMENT" });
  t.is(count(after) - count(before), 4);
  t.true(cluster.logOf(1).includes(`"method":"${path}"`));
  const lead = await cluster.waitReady();
  t.true(lead > 0);
  for (const n of cluster.nodes) await waitFor(async () => (await cluster.status(n.id)).leaderId === BigInt(lead) || undefined, `node ${n.id} follows`);
});

/** grpc-js's value of `grpc.default_compression_algorithm` for gzip. */
const GZIP = 2;

test.serial("compressed requests are inflated, then decoded as strictly; one that inflates past the port's limit answers RESOURCE_EXHAUSTED; the node stays healthy", async (t) => {
  const gz = new RawNode(cluster, 1, 2, { "grpc.default_compression_algorithm": GZIP });
  const before = await cluster.metricsOf(1);
  try {
    const status = await gz.request(method("GetClusterStatus"), new Uint8Array(0));
    t.is(status.code, grpc.status.OK, `a gzip-compressed admin request is served: ${status.details}`);
    const undecodable = await gz.request(method("GetRecordInfo"), hex("0a 05 61 62"));
    t.is(undecodable.code, grpc.status.INVALID_ARGUMENT, undecodable.details);
    t.regex(undecodable.details, /is not a valid bkv\.v1\.GetRecordInfoRequest: /, "the inflated body met the strict decoder");
    // 1 MiB of zeros: over the client port's own limit (256 KiB), under grpc-js's default (4 MiB), so only the node's limit refuses it.
    const over = await gz.request(method("GetRecordInfo"), new Uint8Array(1024 * 1024));
    t.is(over.code, grpc.status.RESOURCE_EXHAUSTED, over.details);
    t.regex(over.details, /decompresses to a size larger than 262144/);
    // 64 MiB of zeros gzip to ~64 KiB: small on the wire, over every port's limit inflated.
    const bomb = new Uint8Array(64 * 1024 * 1024);
    for (const name of ["GetRecordInfo", "BeginRecovery", "GetClusterStatus"]) {
      const out = await gz.request(method(name), bomb, 30_000);
      t.is(out.code, grpc.status.RESOURCE_EXHAUSTED, `${name}: ${out.details}`);
      t.regex(out.details, /decompresses to a size larger than \d+/, name);
    }
    const after = await cluster.metricsOf(1);
    const early = (x: string, port: string, name: string) => counterValue(x, "bkv_grpc_early_ends_total", { port, method: name, stage: "before_request" });
    t.is(early(after, "client", "GetRecordInfo") - early(before, "client", "GetRecordInfo"), 2, "refused inside grpc-js: counted (1 MiB, the bomb)");
    t.is(early(after, "client", "BeginRecovery") - early(before, "client", "BeginRecovery"), 1);
    t.is(early(after, "admin", "GetClusterStatus") - early(before, "admin", "GetClusterStatus"), 1);
    t.true(cluster.logOf(1).includes('"stage":"before_request"'), "and logged");
    const next = await raw.request(method("GetRecordInfo"), hex("0a 05 61 62"));
    t.is(next.code, grpc.status.INVALID_ARGUMENT, `the client port answers the next call as before: ${next.details}`);
    t.true((await cluster.status(1)).leaderId > 0n, "node 1 still follows a leader");
  } finally {
    gz.close();
  }
});
