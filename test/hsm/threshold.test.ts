// Three real SoftHSM tokens in three token directories, one child process
// each (SoftHSM reads its config once per process): their evaluations equal
// the pure-JS k_i·B, and any 2 of 3 combine to the RFC 9497 output of the
// whole key.
import test from "ava";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { resolve } from "node:path";
import { p256_oprf } from "@noble/curves/nist.js";
import { N, Point, createToken, randomScalar, wrapShareForTest, type TestToken } from "./helpers.js";

const FIXTURE = resolve(import.meta.dirname, "fixture-token.ts");
const TSX = resolve(import.meta.dirname, "../../node_modules/.bin/tsx");

interface Node {
  id: bigint;
  token: TestToken;
  proc: ChildProcessWithoutNullStreams;
  agreement: Uint8Array;
  call(req: object): Promise<Record<string, string>>;
}

async function startNode(id: bigint): Promise<Node> {
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

const mod = (a: bigint) => ((a % N) + N) % N;
function inv(a: bigint): bigint {
  let [r0, r1, s0, s1] = [mod(a), N, 1n, 0n];
  while (r1 !== 0n) { const q = r0 / r1; [r0, r1] = [r1, r0 - q * r1]; [s0, s1] = [s1, s0 - q * s1]; }
  return mod(s0);
}
/** Lagrange coefficient at 0 of node `i` within `ids`. */
function lagrange(i: bigint, ids: bigint[]): bigint {
  let num = 1n, den = 1n;
  for (const j of ids) if (j !== i) { num = mod(num * -j); den = mod(den * (i - j)); }
  return mod(num * inv(den));
}
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const be32 = (n: bigint) => Uint8Array.from(Buffer.from(n.toString(16).padStart(64, "0"), "hex"));

let nodes: Node[] = [];

test.before(async () => {
  nodes = await Promise.all([1n, 2n, 3n].map(startNode));
});

test.after.always(() => {
  for (const n of nodes) { n.proc.kill(); n.token.remove(); }
});

test("three tokens have distinct agreement keys", (t) => {
  t.is(new Set(nodes.map((n) => hex(n.agreement))).size, 3);
});

test("2-of-3 evaluation in three real tokens reproduces the RFC 9497 output of the whole key", async (t) => {
  const k = randomScalar();
  const a1 = randomScalar();
  const share = (i: bigint) => mod(k + a1 * i); // degree-1 Shamir polynomial, node ids as x
  const input = new TextEncoder().encode("correct horse battery staple");
  const { blind, blinded } = p256_oprf.oprf.blind(input);
  const B = Point.fromBytes(blinded);

  const evaluated = new Map<bigint, InstanceType<typeof Point>>();
  for (const n of nodes) {
    const ki = share(n.id);
    const Ki = Point.BASE.multiply(ki).toBytes(true);
    const reply = await n.call({ blob: hex(wrapShareForTest(n.agreement, ki)), b: hex(blinded), k: hex(Ki) });
    t.is(reply.out, hex(B.multiply(ki).toBytes(true)), `node ${n.id} equals the pure-JS k_i·B`);
    evaluated.set(n.id, Point.fromHex(reply.out ?? ""));
  }

  // the non-threshold RFC 9497 path with the whole key k
  const expected = p256_oprf.oprf.finalize(input, blind, p256_oprf.oprf.blindEvaluate(be32(k), blinded));
  for (const ids of [[1n, 2n], [1n, 3n], [2n, 3n]]) {
    let combined = Point.ZERO;
    for (const i of ids) combined = combined.add((evaluated.get(i) as InstanceType<typeof Point>).multiply(lagrange(i, ids)));
    const out = p256_oprf.oprf.finalize(input, blind, combined.toBytes(true));
    t.is(hex(out), hex(expected), `subset ${ids.join(",")}`);
  }
});

test("a share wrapped to another node's token is refused as WRAPPED_KEY_INVALID", async (t) => {
  const [n1, n2] = nodes as [Node, Node];
  const ki = randomScalar();
  const B = Point.BASE.multiply(randomScalar());
  const reply = await n2.call({
    blob: hex(wrapShareForTest(n1.agreement, ki)), b: hex(B.toBytes(true)), k: hex(Point.BASE.multiply(ki).toBytes(true)),
  }) as unknown as { error?: { code: string } };
  t.is(reply.error?.code, "WRAPPED_KEY_INVALID");
});
