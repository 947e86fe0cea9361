// Catch-ups of fresh nodes on one loaded cluster (issue 12's C, repeated, so
// that a change can be judged against the spread of one build): a 3-node
// testkit cluster of the compiled build loads --records clones of one real
// registration through the log (as bench:scale does, without the recovery
// load), takes a snapshot on the leader, then --rounds times: a new node with
// an empty data dir joins (autoJoin, as scaling the StatefulSet up), its
// seconds from spawn until it applied the leader's commit index are taken
// with the CPU seconds it and the others spent meanwhile, the others'
// longest event-loop stalls meanwhile (read every second), and the node's
// own account of its import (the "imported a snapshot" log line: ms waited
// for chunks, parsing and writing, waiting for the hash threads) is printed;
// then it is removed from the cluster and stopped. One build's rounds
// differ by up to ~25% at 100k: compare builds by alternating them on one
// cluster with --entries (the new nodes' entry by round, in turn: another
// tree's dist/node/server/main.js, built; the cluster's own nodes run this
// tree's build). --join-node-args gives the new nodes (only) extra node
// flags, e.g. "--cpu-prof --cpu-prof-dir=DIR" for a profile of the catch-up
// alone; the new node's own longest stall is printed with the others'.
// --recovery-rates gives the full recoveries of real users that run beside
// each round, per second, in turn by round (bench:scale runs 4/s beside its
// catch-up): "0,4" alternates rounds without and with them.
// Run: npx tsx bench/catch-up.ts [--records 100000] [--rounds 3] [--entries A,B] [--join-node-args="FLAGS"] [--recovery-rates 0]
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { LocalCluster, builtNodeEntry } from "../testkit/cluster.js";
import { killClusterNow, registerClones, sampleStalls, secondsToApply, stopCluster } from "./bkv.js";
import { cleanupOnExit, load } from "./drive.js";
import { ProbeRecoveries } from "./probes.js";
import { processCpuSeconds } from "./sample.js";

const { values: args } = parseArgs({
  options: {
    records: { type: "string", default: "100000" }, rounds: { type: "string", default: "3" }, entries: { type: "string" },
    "join-node-args": { type: "string", default: "" }, "recovery-rates": { type: "string", default: "0" },
  },
});
const RECORDS = Number(args.records);
const RECOVERY_RATES = args["recovery-rates"].split(",").map(Number);
if (RECOVERY_RATES.some((r) => !(r >= 0))) throw new Error("bench/catch-up: --recovery-rates takes numbers ≥ 0, comma-separated");
const DEADLINE_MS = 30_000;

/** One new node `id` (started from `entry`, beside `rate` recoveries/s) caught up: seconds, CPU seconds (the others, then its own), the others' longest stalls, its import line. */
async function catchUp(cluster: LocalCluster, leader: number, id: number, entry: string, probes: ProbeRecoveries, rate: number): Promise<string> {
  const target = Number((await cluster.status(leader)).commitIndex);
  await cluster.prepareNode(id, { autoJoin: true });
  const others = cluster.nodes.filter((n) => n.proc !== null);
  const cpu0 = others.map((n) => processCpuSeconds(n.proc!.pid));
  const stalls = sampleStalls(cluster, [...others.map((n) => n.id), id]);
  const t0 = performance.now();
  probes.phase = `round ${id}`;
  probes.start(rate);
  cluster.useEntry(entry);
  cluster.restart(id, args["join-node-args"].split(" ").filter((a) => a !== ""));
  const seconds = await secondsToApply(cluster, id, target, t0);
  probes.stop();
  const longest = [...(await stalls.stop()).values()].map((xs) => Math.max(0, ...xs.stallMs).toFixed(0));
  const stallMax = `${longest.slice(0, -1).join(" / ")}; its own ${longest.at(-1)}`;
  const cpu = others.map((n, i) => (processCpuSeconds(n.proc!.pid) - cpu0[i]!).toFixed(1)).join(" / ");
  const own = processCpuSeconds(cluster.node(id).proc?.pid).toFixed(1);
  const line = cluster.logOf(id).split("\n").find((l) => l.includes("\"imported a snapshot\"")) ?? "{}";
  const { time: _t, level: _l, msg: _m, node: _n, term: _term, ...spent } = JSON.parse(line) as Record<string, unknown>;
  await probes.drain(); // the round's last recoveries count in its p99 and failures
  const beside = rate > 0 ? `, ${rate} recoveries/s beside it (p99 ${probes.p99(probes.phase)})` : "";
  return `node ${id} (${entry}${beside}): caught up in ${seconds.toFixed(1)} s; CPU s: the others ${cpu}, its own ${own}; the others' longest stalls ${stallMax} ms; import ${JSON.stringify(spent)}`;
}

async function main(): Promise<void> {
  let cluster: LocalCluster | undefined;
  const finish = cleanupOnExit(() => stopCluster(cluster), () => killClusterNow(cluster));
  try {
    console.log(`bench/catch-up: ${RECORDS.toLocaleString("en")} records, ${args.rounds} rounds, load ${load()}`);
    const own = builtNodeEntry();
    const entries = args.entries?.split(",") ?? [own];
    cluster = await LocalCluster.start({ clusterId: "catch-up", nodeEntry: own });
    const probes = await ProbeRecoveries.register(cluster);
    const t0 = performance.now();
    await registerClones(cluster, { count: RECORDS, inFlight: 128 });
    console.log(`loaded in ${((performance.now() - t0) / 1000).toFixed(0)} s, load ${load()}`);
    const leader = await cluster.leaderId();
    await cluster.admin(leader).takeSnapshot({}, { deadline: new Date(Date.now() + 10 * 60_000) });
    for (let r = 0, id = 4; r < Number(args.rounds); r++, id++) {
      console.log(await catchUp(cluster, leader, id, entries[r % entries.length]!, probes, RECOVERY_RATES[r % RECOVERY_RATES.length]!));
      await cluster.admin(leader).removeNode({ requestId: new Uint8Array(randomBytes(16)), nodeId: BigInt(id) }, { deadline: new Date(Date.now() + DEADLINE_MS) });
      await cluster.stop(id);
      cluster.nodes.splice(cluster.nodes.findIndex((n) => n.id === id), 1); // later nodes' configs do not list it
    }
  } finally {
    await finish();
  }
}

await main();
