// The cost of linearizable reads (issue 9 item 3) on a local 3-node cluster of
// real bkv-node processes: GetRecordInfo linearizable (ReadIndex confirmed by
// a heartbeat quorum, then applied locally) against stale (local state), at 1
// and 64 requests in flight, to the leader and to a follower (which forwards
// MsgReadIndex to the leader). Not run by tests or CI: the lead runs it on a
// quiet machine and records the table in docs/benchmarks.md.
// Run: npx tsx bench/reads.ts [--seconds S] [--in-flight 1,64]
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { VaultClient } from "../client/sdk/index.js";
import { LocalCluster } from "../testkit/cluster.js";
import { processCpuSeconds } from "./sample.js";

const CHEAP_SCRYPT = { N: 1024, r: 8, p: 1 };
const USER = "bench-reader";

interface Row { rate: number; lat: number[]; cpuMs: number[] }

/** `inFlight` loops of GetRecordInfo to node `target` for `seconds`: calls/s, sorted latencies, CPU ms per call of each node. */
async function readThroughput(cluster: LocalCluster, target: number, stale: boolean, inFlight: number, seconds: number): Promise<Row> {
  const vault = cluster.vault(target);
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const loop = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await vault.getRecordInfo({ userId: USER, stale }, { deadline: new Date(Date.now() + 10_000) });
      lat.push(performance.now() - t0);
      n++;
    }
  };
  const pids = cluster.nodes.map((x) => x.proc?.pid);
  const cpu0 = pids.map((pid) => processCpuSeconds(pid));
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, loop));
  const elapsed = (performance.now() - t0) / 1000;
  return {
    rate: n / elapsed, lat: lat.sort((a, b) => a - b),
    cpuMs: pids.map((pid, i) => ((processCpuSeconds(pid) - cpu0[i]!) * 1000) / n),
  };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: "string", default: "10" }, "in-flight": { type: "string", default: "1,64" } } });
  const seconds = Number(values.seconds);
  const inFlights = (values["in-flight"] ?? "1,64").split(",").map(Number);
  const cluster = await LocalCluster.start({ clusterId: "bench-reads" });
  try {
    const leader = await cluster.waitReady();
    const follower = cluster.nodes.map((x) => x.id).find((id) => id !== leader)!;
    const client = new VaultClient(await cluster.descriptor(), { token: cluster.token, scrypt: CHEAP_SCRYPT });
    await client.register(USER, "bench password");
    client.close();
    console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, node ${process.version}`);
    console.log(`\n| GetRecordInfo (${seconds} s) | in flight | calls/s | p50 ms | p99 ms | CPU ms per call (nodes 1/2/3) | load (1 min) |\n|---|---:|---:|---:|---:|---|---|`);
    for (const [name, target] of [["leader", leader], ["follower", follower]] as const) {
      for (const stale of [true, false]) {
        for (const inFlight of inFlights) {
          const r = await readThroughput(cluster, target, stale, inFlight, seconds);
          const kind = `${stale ? "stale" : "linearizable"}, to the ${name}`;
          const ms = (x: number) => x.toFixed(2);
          console.log(`| ${kind} | ${inFlight} | ${r.rate.toFixed(0)} | ${ms(quantile(r.lat, 0.5))} | ${ms(quantile(r.lat, 0.99))} | ${r.cpuMs.map(ms).join(" / ")} | ${loadavg()[0]!.toFixed(2)} |`);
        }
      }
    }
  } finally {
    await cluster.close();
  }
}

await main();
