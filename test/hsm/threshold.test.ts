// Three real SoftHSM tokens in three token directories, one child process
// each (SoftHSM reads its config once per process): their evaluations equal
// the pure-JS k_i·B, and any 2 of 3 combine to the RFC 9497 output of the
// whole key.
import test from "ava";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { resolve } from "node:path";
import { p256_oprf } from "@noble/curves/nist.js";
import { combinePoints, encodeScalar, splitSecret, type EvaluatedPoint } from "../../proto/crypto/index.js";
import { Point, createToken, randomScalar, wrapShare, type TestToken } from "../../testkit/hsm.js";

const FIXTURE = resolve(import.meta.dirname, "fixture-token.ts");
const TSX = resolve(import.meta.dirname, "../../node_modules/.bin/tsx");

interface Node {
  id: number;
  token: TestToken;
  proc: ChildProcessWithoutNullStreams;
  agreement: Uint8Array;
  call(req: object): Promise<Record<string, string>>;
}

async function startNode(id: number): Promise<Node> {
  const token = createToken(`node-${id}`);
  const proc = spawn(TSX, [FIXTURE, token.dir, `node-${id}`], { stdio: ["pipe", "pipe", "pipe"] });
  const waiting = new Map<number, (m: Record<string, string>) => void>();
  const lines = createInterface({ input: proc.stdout });
  let first: ((m: Record<string, string>) => void) | undefined;
  const ready = new Promise<Record<string, string>>((r) => { first = r; });
  lines.on("line", (line) => {
    const msg = JSON.parse(line) as Record<string, string> & { id: number };
    if (msg.id === 0) first?.(msg);
    waiting.get(msg.id)?.(msg);
    waiting.delete(msg.id);
  });
  let next = 1;
  const hello = await ready;
  return {
    id, token, proc,
    agreement: Uint8Array.from(Buffer.from(hello.agreement ?? "", "hex")),
    call: (req) => new Promise((r) => {
      const reqId = next++;
      waiting.set(reqId, r);
      proc.stdin.write(JSON.stringify({ ...req, id: reqId }) + "\n");
    }),
  };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

let nodes: Node[] = [];

test.before(async () => {
  nodes = await Promise.all([1, 2, 3].map(startNode));
});

test.after.always(() => {
  for (const n of nodes) { n.proc.kill(); n.token.remove(); }
});

test("three tokens have distinct agreement keys", (t) => {
  t.is(new Set(nodes.map((n) => hex(n.agreement))).size, 3);
});

test("2-of-3 evaluation in three real tokens reproduces the RFC 9497 output of the whole key", async (t) => {
  const k = randomScalar();
  const shares = new Map(splitSecret(k, 2, [1, 2, 3]).map((s) => [s.id, s.share]));
  const input = new TextEncoder().encode("correct horse battery staple");
  const { blind, blinded } = p256_oprf.oprf.blind(input);
  const B = Point.fromBytes(blinded);

  const evaluated = new Map<number, EvaluatedPoint>();
  for (const n of nodes) {
    const ki = shares.get(n.id) as bigint;
    const Ki = Point.BASE.multiply(ki).toBytes(true);
    const reply = await n.call({ blob: hex(wrapShare(n.agreement, ki)), b: hex(blinded), k: hex(Ki) });
    t.is(reply.out, hex(B.multiply(ki).toBytes(true)), `node ${n.id} equals the pure-JS k_i·B`);
    evaluated.set(n.id, { id: n.id, point: Point.fromHex(reply.out ?? "") });
  }

  // the non-threshold RFC 9497 path with the whole key k
  const expected = p256_oprf.oprf.finalize(input, blind, p256_oprf.oprf.blindEvaluate(encodeScalar(k), blinded));
  for (const ids of [[1, 2], [1, 3], [2, 3]]) {
    const combined = combinePoints(ids.map((i) => evaluated.get(i) as EvaluatedPoint));
    const out = p256_oprf.oprf.finalize(input, blind, combined.toBytes(true));
    t.is(hex(out), hex(expected), `subset ${ids.join(",")}`);
  }
});

test("a share wrapped to another node's token is refused as WRAPPED_KEY_INVALID", async (t) => {
  const [n1, n2] = nodes as [Node, Node];
  const ki = randomScalar();
  const B = Point.BASE.multiply(randomScalar());
  const reply = await n2.call({
    blob: hex(wrapShare(n1.agreement, ki)), b: hex(B.toBytes(true)), k: hex(Point.BASE.multiply(ki).toBytes(true)),
  }) as unknown as { error?: { code: string } };
  t.is(reply.error?.code, "WRAPPED_KEY_INVALID");
});
