// A small seeded randomized run on the test network (the thorough one is
// test/sim): message loss, partitions, restarts, compaction and transfers,
// checking Election Safety and State Machine Safety throughout and that
// everything converges after healing.
import test from "ava";
import { StateType } from "../../node/raft/index.js";
import { Network, enc, mulberry32 } from "./network.js";

function run(seed: number): { leadersPerTerm: Map<number, Set<number>>; net: Network } {
  const rnd = mulberry32(seed);
  const ids = [1, 2, 3, 4, 5];
  const net = new Network(ids, { maxSnapshotChunkBytes: 128, maxInflightMsgs: 4, maxSizePerMsg: 200 }, seed);
  net.filters.push(() => rnd(100) < 10); // 10% loss
  const leadersPerTerm = new Map<number, Set<number>>();
  let proposals = 0;
  for (let step = 0; step < 300; step++) {
    const r = rnd(100);
    if (r < 3) {
      net.heal();
      net.filters.push(() => rnd(100) < 10);
      net.isolate(ids[rnd(5)]!);
    } else if (r < 5) {
      net.restart(ids[rnd(5)]!, seed + step);
    } else if (r < 7) {
      net.compact(ids[rnd(5)]!);
    } else if (r < 8) {
      const l = net.leaders()[0];
      if (l !== undefined) net.node(l).raw.transferLeadership(ids[rnd(5)]!);
    } else if (r < 40) {
      try {
        net.node(ids[rnd(5)]!).raw.propose(enc(`p${proposals++}`));
      } catch { /* dropped: no leader */ }
    }
    net.tick(1);
    for (const id of ids) {
      const st = net.status(id);
      if (st.softState.state !== StateType.Leader) continue;
      const set = leadersPerTerm.get(st.hardState.term) ?? new Set();
      set.add(id);
      leadersPerTerm.set(st.hardState.term, set);
    }
  }
  net.heal();
  net.tick(60);
  return { leadersPerTerm, net };
}

for (const seed of [11, 12, 13, 14, 15, 16]) {
  test(`randomized seed ${seed}: one leader per term, identical applied sequences, convergence`, (t) => {
    const { leadersPerTerm, net } = run(seed);
    for (const [term, set] of leadersPerTerm) t.is(set.size, 1, `term ${term} had leaders ${[...set]}`);
    const ref = net.appliedText(1);
    t.true(ref.length > 0);
    for (const id of [2, 3, 4, 5]) t.deepEqual(net.appliedText(id), ref, `node ${id}`);
    for (const id of [1, 2, 3, 4, 5]) t.is(net.status(id).refusedTruncations, 0);
    t.is(net.leaders().length, 1);
    t.log(`${ref.length} entries applied, ${[...net.nodes.values()].reduce((n, x) => n + x.snapshotsApplied, 0)} snapshots installed`);
  });
}
