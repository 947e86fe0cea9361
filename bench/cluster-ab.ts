// A/B of the cluster benchmark across source trees on a noisy machine: starts
// one local 3-node cluster per tree (each tree's own node code, test harness
// and SDK), then alternates short BeginRecovery rows between the clusters,
// reversing the order every round, so that load from other jobs falls on
// every tree alike. Reports the median rate and p50, and the CPU the three
// node processes spent per committed call (much steadier than the rate).
//
//   git archive <commit> | tar -x -C /tmp/before && ln -s $PWD/node_modules /tmp/before/
//   npx tsx bench/cluster-ab.ts --trees /tmp/before,. [--in-flight 1,64] [--seconds 4] [--rounds 6]
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, resolve } from "node:path";
import { parseArgs } from "node:util";
import { median, processCpuSeconds } from "./sample.js";

interface Cluster {
  readonly nodes: ReadonlyArray<{ readonly proc: { readonly pid?: number } | null }>;
  /** The tree's token provider (absent before client authentication). */
  readonly token?: unknown;
  descriptor(): Promise<unknown>;
  leaderId(): Promise<number>;
  vault(id: number): { beginRecovery(req: object, opts: object): Promise<unknown> };
  close(): Promise<void>;
}
interface Tree { readonly name: string; readonly cluster: Cluster; readonly leader: number }
interface Row { readonly rate: number; readonly p50: number; readonly cpuMs: number; readonly load: number }

const USERS = 512;

async function startTree(dir: string): Promise<Tree> {
  // testkit/cluster.ts since the testkit move; older trees keep it at test/e2e/cluster.ts.
  const harness = ["testkit/cluster.ts", "test/e2e/cluster.ts"].map((f) => resolve(dir, f)).find((f) => existsSync(f)) ?? resolve(dir, "testkit/cluster.ts");
  const { LocalCluster } = await import(harness) as { LocalCluster: { start(o: object): Promise<Cluster> } };
  const { VaultClient } = await import(resolve(dir, "client/sdk/index.ts"));
  const cluster = await LocalCluster.start({ clusterId: `ab-${basename(resolve(dir))}` });
  const client = new VaultClient(await cluster.descriptor(), { token: cluster.token, scrypt: { N: 1024, r: 8, p: 1 } });
  for (let i = 0; i < USERS; i += 32) {
    await Promise.all(Array.from({ length: 32 }, (_, k) => client.register(`u${i + k}`, "x", { guessLimit: 255 })));
  }
  client.close();
  return { name: dir, cluster, leader: await cluster.leaderId() };
}

let nextBlinded = 0;

async function row(t: Tree, inFlight: number, seconds: number, blinded: Uint8Array[]): Promise<Row> {
  const vault = t.cluster.vault(t.leader);
  const pids = t.cluster.nodes.map((n) => n.proc?.pid);
  const cpu0 = pids.map(processCpuSeconds);
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async (_, k) => {
    for (let i = k; performance.now() < end; i += inFlight) {
      const a = performance.now();
      await vault.beginRecovery({
        requestId: new Uint8Array(randomBytes(16)), userId: `u${i % USERS}`, blindedElement: blinded[nextBlinded++ % blinded.length]!,
      }, { deadline: new Date(Date.now() + 10_000) });
      lat.push(performance.now() - a);
    }
  }));
  const elapsed = (performance.now() - t0) / 1000;
  let cpu = 0;
  pids.forEach((pid, i) => { cpu += processCpuSeconds(pid) - cpu0[i]!; });
  lat.sort((a, b) => a - b);
  return { rate: lat.length / elapsed, p50: lat[Math.floor(lat.length / 2)]!, cpuMs: (cpu * 1000) / lat.length, load: loadavg()[0]! };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      trees: { type: "string" }, "in-flight": { type: "string", default: "1,64" },
      seconds: { type: "string", default: "4" }, rounds: { type: "string", default: "6" },
    },
  });
  if (values.trees === undefined) throw new Error("--trees DIR,DIR is required");
  const inFlights = values["in-flight"].split(",").map(Number);
  const { G, encodePoint, randomScalar } = await import("../proto/crypto/index.js");
  // Distinct points (consecutive multiples of G): a node remembers recently decoded points, a real client blinds afresh.
  let p = G.multiply(randomScalar());
  const blinded = Array.from({ length: 60_000 }, () => encodePoint(p = p.add(G)));
  const trees: Tree[] = [];
  const rows = new Map<string, Row[]>();
  try {
    for (const dir of values.trees.split(",")) trees.push(await startTree(dir));
    for (let r = 0; r < Number(values.rounds); r++) {
      for (const k of inFlights) {
        for (const t of r % 2 === 0 ? trees : [...trees].reverse()) {
          const key = `${t.name}|${k}`;
          try {
            const x = await row(t, k, Number(values.seconds), blinded);
            rows.set(key, [...(rows.get(key) ?? []), x]);
            console.error(`${t.name} @${k} round ${r}: ${x.rate.toFixed(0)}/s p50 ${x.p50.toFixed(1)} ms, ${x.cpuMs.toFixed(2)} CPU ms/call, load ${x.load.toFixed(1)}`);
          } catch (err) {
            console.error(`${t.name} @${k} round ${r}: failed (${String(err).slice(0, 100)})`); // e.g. an election under load
          }
        }
      }
    }
  } finally {
    for (const t of trees) await t.cluster.close();
  }
  console.log("| tree | in flight | median committed/s | each round | median p50 ms | median node CPU ms per call | load (1 min) |");
  console.log("|---|---:|---:|---|---:|---:|---|");
  for (const [key, xs] of rows) {
    const [name, k] = key.split("|");
    const loads = xs.map((x) => x.load);
    console.log(`| ${name} | ${k} | ${median(xs.map((x) => x.rate)).toFixed(0)} | ${xs.map((x) => x.rate.toFixed(0)).join(", ")} | ` +
      `${median(xs.map((x) => x.p50)).toFixed(1)} | ${median(xs.map((x) => x.cpuMs)).toFixed(2)} | ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} |`);
  }
}

await main();
