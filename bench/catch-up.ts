// Catch-ups of fresh nodes on one loaded cluster (issue 12's C, repeated, so
// that a change can be judged against the spread of one build): a 3-node
// testkit cluster of the compiled build loads --records clones of one real
// registration through the log (as bench:scale does, without the recovery
// load), takes a snapshot on the leader, then --rounds times: a new node with
// an empty data dir joins (autoJoin, as scaling the StatefulSet up), its
// seconds from spawn until it applied the leader's commit index are taken
// with the CPU seconds it and the others spent meanwhile, and the node's
// own account of its import (the "imported a snapshot" log line: ms waited
// for chunks, parsing and writing, waiting for the hash threads) is printed;
// then it is removed from the cluster and stopped. One build's rounds
// differ by up to ~25% at 100k: compare builds by alternating runs.
// Run: npx tsx bench/catch-up.ts [--records 100000] [--rounds 3]
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { LocalCluster, builtNodeEntry } from "../testkit/cluster.js";
import { clonedRegistrations, killClusterNow, secondsToApply, stopCluster } from "./bkv.js";
import { cleanupOnExit, load } from "./drive.js";
import { processCpuSeconds } from "./sample.js";

const { values: args } = parseArgs({ options: { records: { type: "string", default: "100000" }, rounds: { type: "string", default: "3" } } });
const RECORDS = Number(args.records);
const DEADLINE_MS = 30_000;

/** Registers RECORDS clones through the leader, 128 at a time. */
async function loadRecords(cluster: LocalCluster): Promise<void> {
  const registration = clonedRegistrations(await cluster.descriptor());
  const leader = await cluster.leaderId();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < RECORDS; i = next++) {
      await cluster.vault(leader).register(registration(i), { deadline: new Date(Date.now() + DEADLINE_MS) });
    }
  };
  await Promise.all(Array.from({ length: 128 }, worker));
}

/** One new node `id` caught up: seconds, CPU seconds (the others, then its own), its import line. */
async function catchUp(cluster: LocalCluster, leader: number, id: number): Promise<string> {
  const target = Number((await cluster.status(leader)).commitIndex);
  await cluster.prepareNode(id, { autoJoin: true });
  const others = cluster.nodes.filter((n) => n.proc !== null).map((n) => n.proc!.pid);
  const cpu0 = others.map(processCpuSeconds);
  const t0 = performance.now();
  cluster.restart(id);
  const seconds = await secondsToApply(cluster, id, target, t0);
  const cpu = others.map((pid, i) => (processCpuSeconds(pid) - cpu0[i]!).toFixed(1)).join(" / ");
  const own = processCpuSeconds(cluster.node(id).proc?.pid).toFixed(1);
  const line = cluster.logOf(id).split("\n").find((l) => l.includes("\"imported a snapshot\"")) ?? "{}";
  const { time: _t, level: _l, msg: _m, node: _n, term: _term, ...spent } = JSON.parse(line) as Record<string, unknown>;
  return `node ${id}: caught up in ${seconds.toFixed(1)} s; CPU s: the others ${cpu}, its own ${own}; import ${JSON.stringify(spent)}`;
}

async function main(): Promise<void> {
  let cluster: LocalCluster | undefined;
  const finish = cleanupOnExit(() => stopCluster(cluster), () => killClusterNow(cluster));
  try {
    console.log(`bench/catch-up: ${RECORDS.toLocaleString("en")} records, ${args.rounds} rounds, load ${load()}`);
    cluster = await LocalCluster.start({ clusterId: "catch-up", nodeEntry: builtNodeEntry() });
    const t0 = performance.now();
    await loadRecords(cluster);
    console.log(`loaded in ${((performance.now() - t0) / 1000).toFixed(0)} s, load ${load()}`);
    const leader = await cluster.leaderId();
    await cluster.admin(leader).takeSnapshot({}, { deadline: new Date(Date.now() + 10 * 60_000) });
    for (let r = 0, id = 4; r < Number(args.rounds); r++, id++) {
      console.log(await catchUp(cluster, leader, id));
      await cluster.admin(leader).removeNode({ requestId: new Uint8Array(randomBytes(16)), nodeId: BigInt(id) }, { deadline: new Date(Date.now() + DEADLINE_MS) });
      await cluster.stop(id);
      cluster.nodes.splice(cluster.nodes.findIndex((n) => n.id === id), 1); // later nodes' configs do not list it
    }
  } finally {
    await finish();
  }
}

await main();
