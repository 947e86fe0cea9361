// End-to-end benchmark on a local 3-node cluster of real bkv-node processes
// (SoftHSM tokens, TLS gRPC on 127.0.0.1, real fsync):
//   1. latency of one recover() with the SDK (default and cheap scrypt);
//   2. committed BeginRecovery per second over gRPC to the leader at 1 and 64
//      requests in flight: every call is one Raft entry replicated, fsynced on a
//      majority and applied (the figure to compare with etcd's puts); each
//      user takes at most 8 begins in a row and is confirmed after it, outside
//      the timing (bench/bkv.ts BeginUsers), so every row does the same work.
// Run: npx tsx bench/cluster.ts [--seconds S] [--in-flight 1,64] [--rounds R] [--no-recover]
//   (prints markdown tables and the load average before and after each row;
//   --rounds repeats the throughput rows on the same cluster, for A/B runs)
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { VaultClient } from "../client/sdk/index.js";
import { LocalCluster } from "../testkit/cluster.js";
import { BEGINS_PER_USER, BeginUsers, CHEAP_SCRYPT, type RowUsers, describeRowUsers } from "./bkv.js";
import { distinctPoints, load } from "./drive.js";
import { metricOf, processCpuSeconds, quantile } from "./sample.js";

async function recoverLatency(client: VaultClient, user: string, runs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await client.recover(user, "bench password");
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}

interface Row { rate: number; lat: number[]; leaderCpuMs: number; followerCpuMs: number; clientCpuMs: number; leaderMessages: number; users: RowUsers }

/** The Raft messages node `id` has sent to its peers (bkv_peer_messages_sent_total). */
async function messagesSent(cluster: LocalCluster, id: number): Promise<number> {
  return metricOf(await cluster.metricsOf(id), "bkv_peer_messages_sent_total");
}

/**
 * Runs `inFlight` loops of BeginRecovery against the leader for `seconds`;
 * returns ops/s, sorted latencies, and CPU milliseconds per committed call
 * of the leader, of the followers (mean) and of this benchmark client: CPU
 * per call depends much less on the machine's load than the rate does.
 * `users` are prepared for `calls` begins before, and settled after.
 */
async function beginThroughput(cluster: LocalCluster, leader: number, inFlight: number, seconds: number, users: BeginUsers, calls: number): Promise<Row> {
  await users.prepare(calls);
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const loop = async (k: number) => {
    for (let i = k; performance.now() < end; i += inFlight) {
      const t0 = performance.now();
      await users.begin(nextBlinded());
      lat.push(performance.now() - t0);
      n++;
    }
  };
  const pids = cluster.nodes.map((x) => ({ id: x.id, pid: x.proc?.pid }));
  const cpu0 = pids.map((x) => processCpuSeconds(x.pid));
  const client0 = process.cpuUsage();
  const sent0 = await messagesSent(cluster, leader);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, (_, k) => loop(k)));
  const elapsed = (performance.now() - t0) / 1000;
  const client = process.cpuUsage(client0);
  const perCall = pids.map((x, i) => ((processCpuSeconds(x.pid) - cpu0[i]!) * 1000) / n);
  const leaderMessages = (await messagesSent(cluster, leader) - sent0) / n;
  const spent = await users.settle();
  const followers = perCall.filter((_, i) => pids[i]!.id !== leader);
  return {
    rate: n / elapsed, lat: lat.sort((a, b) => a - b),
    leaderCpuMs: perCall[pids.findIndex((x) => x.id === leader)]!,
    followerCpuMs: followers.reduce((a, b) => a + b, 0) / followers.length,
    clientCpuMs: (client.user + client.system) / 1000 / n, leaderMessages, users: spent,
  };
}

/** Distinct blinded elements, made up front (the client's EC cost is not what this measures). */
const BLINDED = distinctPoints(40_000);
let blindedNext = 0;
function nextBlinded(): Uint8Array {
  return BLINDED[blindedNext++ % BLINDED.length]!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "10" }, "in-flight": { type: "string", default: "1,64" },
      rounds: { type: "string", default: "1" }, users: { type: "string", default: "1024" }, "no-recover": { type: "boolean", default: false },
    },
  });
  const seconds = Number(values.seconds);
  const inFlights = values["in-flight"].split(",").map(Number);
  const rounds = Number(values.rounds);
  const users = Number(values.users);
  const cluster = await LocalCluster.start({ clusterId: "bench" });
  try {
    const descriptor = await cluster.descriptor();
    const def = new VaultClient(descriptor, { token: cluster.token });
    const cheap = new VaultClient(descriptor, { token: cluster.token, scrypt: CHEAP_SCRYPT });
    await def.register("bench-default", "bench password");
    await cheap.register("bench-cheap", "bench password");
    const latDefault = values["no-recover"] ? [] : await recoverLatency(def, "bench-default", 20);
    const latCheap = values["no-recover"] ? [] : await recoverLatency(cheap, "bench-cheap", 20);
    const leader = await cluster.leaderId();
    const beginUsers = await BeginUsers.of(cluster);
    let peak = 0;
    const rows: Array<[string, Row, string]> = [];
    for (let round = 0; round < rounds; round++) {
      for (const k of inFlights) {
        const before = load();
        const r = await beginThroughput(cluster, leader, k, seconds, beginUsers, Math.max(users * BEGINS_PER_USER, 2 * peak * seconds));
        peak = Math.max(peak, r.rate);
        rows.push([`${k} in flight`, r, `${before} → ${load()}`]);
      }
    }
    def.close();
    cheap.close();
    const ms = (v: number) => v.toFixed(1);
    console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, node ${process.version}`);
    if (!values["no-recover"]) {
      console.log("\n| recover() end to end (20 runs) | p50 ms | p90 ms | min | max |\n|---|---:|---:|---:|---:|");
      for (const [name, l] of [["default scrypt (N=2^15)", latDefault], ["scrypt N=2^10", latCheap]] as const) {
        console.log(`| ${name} | ${ms(quantile(l, 0.5))} | ${ms(quantile(l, 0.9))} | ${ms(l[0]!)} | ${ms(l[l.length - 1]!)} |`);
      }
    }
    console.log(`\n| BeginRecovery to the leader (${seconds} s) | committed/s | p50 ms | p99 ms | CPU ms per call: leader / follower / client | leader's peer messages per call | load (1 min) | users begun / most begins of one |\n|---|---:|---:|---:|---|---:|---|---|`);
    for (const [name, r, ld] of rows) {
      const cpu = [r.leaderCpuMs, r.followerCpuMs, r.clientCpuMs].map((x) => x.toFixed(2)).join(" / ");
      console.log(`| ${name} | ${r.rate.toFixed(0)} | ${ms(quantile(r.lat, 0.5))} | ${ms(quantile(r.lat, 0.99))} | ${cpu} | ${r.leaderMessages.toFixed(2)} | ${ld} | ${describeRowUsers(r.users)} |`);
    }
  } finally {
    await cluster.close();
  }
}

await main();
