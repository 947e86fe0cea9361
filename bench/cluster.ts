// End-to-end benchmark on a local 3-node cluster of real bkv-node processes
// (SoftHSM tokens, TLS gRPC on 127.0.0.1, real fsync):
//   1. latency of one recover() with the SDK (default and cheap scrypt);
//   2. committed BeginRecovery per second over gRPC to the leader at 1 and 64
//      requests in flight: every call is one Raft entry replicated, fsynced on a
//      majority and applied (the figure to compare with etcd's puts).
// Run: npx tsx bench/cluster.ts [--seconds S]   (prints a markdown table)
import { randomBytes } from "node:crypto";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { G, encodePoint, randomScalar } from "../proto/crypto/index.js";
import { VaultClient } from "../client/sdk/index.js";
import { LocalCluster } from "../test/e2e/cluster.js";

const CHEAP_SCRYPT = { N: 1024, r: 8, p: 1 };
const USERS = 256;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function recoverLatency(client: VaultClient, user: string, runs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await client.recover(user, "bench password");
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}

/** Runs `inFlight` loops of BeginRecovery against the leader for `seconds`; returns ops/s and sorted latencies. */
async function beginThroughput(cluster: LocalCluster, leader: number, inFlight: number, seconds: number): Promise<{ rate: number; lat: number[] }> {
  const vault = cluster.vault(leader);
  // Blinded elements made up front: the client's EC cost is not what this measures.
  const blinded = Array.from({ length: 64 }, () => encodePoint(G.multiply(randomScalar())));
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const loop = async (k: number) => {
    for (let i = k; performance.now() < end; i += inFlight) {
      const t0 = performance.now();
      await vault.beginRecovery({
        requestId: new Uint8Array(randomBytes(16)), userId: `u${i % USERS}`, blindedElement: blinded[i % blinded.length]!,
      }, { deadline: new Date(Date.now() + 10_000) });
      lat.push(performance.now() - t0);
      n++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, (_, k) => loop(k)));
  return { rate: n / ((performance.now() - t0) / 1000), lat: lat.sort((a, b) => a - b) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: "string", default: "10" } } });
  const seconds = Number(values.seconds);
  const cluster = await LocalCluster.start({ clusterId: "bench" });
  try {
    const descriptor = await cluster.descriptor();
    const def = new VaultClient(descriptor, {});
    const cheap = new VaultClient(descriptor, { scrypt: CHEAP_SCRYPT });
    await def.register("bench-default", "bench password");
    await cheap.register("bench-cheap", "bench password");
    const latDefault = await recoverLatency(def, "bench-default", 20);
    const latCheap = await recoverLatency(cheap, "bench-cheap", 20);
    // Throughput users: each BeginRecovery spends one of 255 attempts; 256 users cover ~65k calls.
    for (let i = 0; i < USERS; i++) await cheap.register(`u${i}`, "x", { guessLimit: 255 });
    const leader = await cluster.leaderId();
    const one = await beginThroughput(cluster, leader, 1, seconds);
    const many = await beginThroughput(cluster, leader, 64, seconds);
    def.close();
    cheap.close();
    const ms = (v: number) => v.toFixed(1);
    console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, node ${process.version}`);
    console.log("\n| recover() end to end (20 runs) | p50 ms | p90 ms | min | max |\n|---|---:|---:|---:|---:|");
    for (const [name, l] of [["default scrypt (N=2^15)", latDefault], ["scrypt N=2^10", latCheap]] as const) {
      console.log(`| ${name} | ${ms(quantile(l, 0.5))} | ${ms(quantile(l, 0.9))} | ${ms(l[0]!)} | ${ms(l[l.length - 1]!)} |`);
    }
    console.log(`\n| BeginRecovery to the leader (${seconds} s) | committed/s | p50 ms | p99 ms |\n|---|---:|---:|---:|`);
    for (const [name, r] of [["1 in flight", one], ["64 in flight", many]] as const) {
      console.log(`| ${name} | ${r.rate.toFixed(0)} | ${ms(quantile(r.lat, 0.5))} | ${ms(quantile(r.lat, 0.99))} |`);
    }
  } finally {
    await cluster.close();
  }
}

await main();
