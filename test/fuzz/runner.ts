// Runs fuzz cases (cases.ts) against a real cluster and checks the
// properties: every answer is a canonical status other than INTERNAL and
// UNKNOWN; afterwards every node is alive, one leader is known and every
// node reports the same state digest at the same applied index.
import fc from "fast-check";
import * as grpc from "@grpc/grpc-js";
import { VaultClient } from "../../client/sdk/index.js";
import { decodeStrict } from "../../proto/strict.js";
import type { LocalCluster } from "../../testkit/cluster.js";
import { waitFor } from "../../testkit/cluster.js";
import { RawNode, type Outcome } from "../security/raw.js";
import { fuzzCase, type FuzzCase, type FuzzWorld } from "./cases.js";

/** A case whose answer broke the property. */
export interface Failure {
  readonly what: string;
  readonly outcome: Outcome;
}

export interface FuzzSummary {
  cases: number;
  skipped: number;
  failures: Failure[];
  readonly codes: Map<string, number>;
  /** Per method (or "Stream"): cases and total milliseconds. */
  readonly methods: Map<string, { n: number; ms: number }>;
}

/** Canonical (0..16) and neither INTERNAL nor UNKNOWN. */
export function acceptable(o: Outcome): boolean {
  return Number.isInteger(o.code) && o.code >= 0 && o.code <= 16 && o.code !== grpc.status.INTERNAL && o.code !== grpc.status.UNKNOWN;
}

/** Registers the fuzz user and makes sure the term is high enough for stale peer messages. */
export async function prepareWorld(cluster: LocalCluster): Promise<FuzzWorld> {
  const client = new VaultClient(await cluster.descriptor(), { token: cluster.token, scrypt: { N: 1024, r: 8, p: 1 }, retry: { deadlineMs: 20_000 } });
  try {
    await client.register("fuzz-user", "fuzz password");
  } finally {
    client.close();
  }
  for (;;) {
    const lead = await cluster.leaderId();
    const term = Number((await cluster.status(lead)).term);
    if (term >= 3) return { nodes: cluster.nodes.map((n) => n.id), clusterId: cluster.clusterId, user: "fuzz-user", staleTerm: term - 1, peerAs: 1 };
    await cluster.admin(lead).transferLeadership({}).catch(() => undefined);
  }
}

/**
 * Membership changes the fuzzer must not make for real (the cluster would
 * lose a member or gain a learner that never starts): a decodable
 * AddLearner of a new id, RemoveNode of a member, PromoteLearner of any id.
 */
export function unsafe(c: FuzzCase, world: FuzzWorld): boolean {
  if (c.kind !== "request" || !["AddLearner", "RemoveNode", "PromoteLearner"].includes(c.method.name)) return false;
  let id: bigint;
  try {
    id = (decodeStrict(c.method.input, c.body) as unknown as { nodeId: bigint }).nodeId;
  } catch {
    return false;
  }
  const member = world.nodes.includes(Number(id));
  return c.method.name === "RemoveNode" ? member : !member && id > 0n && id < 1n << 53n;
}

export function describe(c: FuzzCase): string {
  const hex = (b: Uint8Array) => Buffer.from(b.subarray(0, 512)).toString("hex");
  return c.kind === "request" ? `${c.method.path} on node ${c.node}: ${hex(c.body)}` : `peer stream to node ${c.node}: ${c.frames.map(hex).join(" | ")}`;
}

/** Raw channels to every node (peer streams as world.peerAs). */
export function rawNodes(cluster: LocalCluster, world: FuzzWorld): Map<number, RawNode> {
  return new Map(world.nodes.map((id) => [id, new RawNode(cluster, id, world.peerAs)]));
}

export function runCase(raws: Map<number, RawNode>, c: FuzzCase): Promise<Outcome> {
  const raw = raws.get(c.node);
  if (raw === undefined) throw new Error(`no node ${c.node}`);
  return c.kind === "request" ? raw.request(c.method, c.body) : raw.stream(c.frames);
}

export interface RunOptions {
  readonly cases: number;
  readonly seed: number;
  readonly concurrency: number;
  /** Called every `progressEvery` cases. */
  readonly progress?: (s: FuzzSummary) => void;
  readonly progressEvery?: number;
}

/**
 * The efficient path (CI's bulk run and the long run): cases are generated
 * in batches from `seed` (batch k from seed + k), pre-encoded, and sent with
 * `concurrency` calls in flight on raw channels.
 */
export async function runFuzz(cluster: LocalCluster, world: FuzzWorld, o: RunOptions): Promise<FuzzSummary> {
  const raws = rawNodes(cluster, world);
  const arb = fuzzCase(world);
  const s: FuzzSummary = { cases: 0, skipped: 0, failures: [], codes: new Map(), methods: new Map() };
  const BATCH = 1000;
  try {
    for (let k = 0; s.cases + s.skipped < o.cases; k++) {
      const batch = fc.sample(arb, { numRuns: Math.min(BATCH, o.cases - s.cases - s.skipped), seed: o.seed + k });
      let next = 0;
      const worker = async () => {
        while (next < batch.length) {
          const c = batch[next++] as FuzzCase;
          if (unsafe(c, world)) {
            s.skipped++;
            continue;
          }
          const t0 = performance.now();
          const out = await runCase(raws, c);
          const m = s.methods.get(c.kind === "request" ? c.method.name : "Stream") ?? { n: 0, ms: 0 };
          s.methods.set(c.kind === "request" ? c.method.name : "Stream", { n: m.n + 1, ms: m.ms + performance.now() - t0 });
          s.cases++;
          const code = grpc.status[out.code] ?? String(out.code);
          s.codes.set(code, (s.codes.get(code) ?? 0) + 1);
          if (!acceptable(out)) s.failures.push({ what: describe(c), outcome: out });
          if (o.progress !== undefined && s.cases % (o.progressEvery ?? 10_000) === 0) o.progress(s);
        }
      };
      await Promise.all(Array.from({ length: o.concurrency }, worker));
    }
  } finally {
    for (const r of raws.values()) r.close();
  }
  return s;
}

/**
 * After a run: every node's process is alive, answers, follows one leader,
 * and all report the same state digest at the same applied index.
 */
export async function checkCluster(cluster: LocalCluster, timeoutMs = 60_000): Promise<{ index: bigint; digest: string }> {
  for (const n of cluster.nodes) {
    if (n.proc === null || n.proc.exitCode !== null || n.proc.signalCode !== null) throw new Error(`node ${n.id} is not running: ${cluster.logOf(n.id).slice(-2000)}`);
  }
  return waitFor(async () => {
    const sts = await Promise.all(cluster.nodes.map((n) => cluster.admin(n.id).getClusterStatus({ includeStateDigest: true }, { deadline: new Date(Date.now() + 5000) })));
    const leaders = new Set(sts.map((x) => x.leaderId));
    const digests = new Set(sts.map((x) => `${x.stateDigestIndex}:${Buffer.from(x.stateDigest).toString("hex")}`));
    if (leaders.size !== 1 || leaders.has(0n) || digests.size !== 1) return undefined;
    const [first] = sts;
    return first === undefined ? undefined : { index: first.stateDigestIndex, digest: Buffer.from(first.stateDigest).toString("hex") };
  }, "every node alive, one leader, equal state digests", timeoutMs);
}

/** The summary's closing line (the long run's record). */
export function summaryLine(s: FuzzSummary, seed: number, ms: number): string {
  const codes = [...s.codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c}=${n}`).join(" ");
  return `fuzz: cases=${s.cases} failures=${s.failures.length} skipped=${s.skipped} seed=${seed} seconds=${(ms / 1000).toFixed(1)} codes: ${codes}`;
}

