import test from "ava";
import { HistoryWriter } from "../../chaos/history.js";
import { FAULT_KINDS, faultSpanMs, generateSchedule, runFault, runSchedule, seededRandom, type NemesisExecutor, type RecoveryPhase } from "../../chaos/nemesis.js";
import type { PartitionSpec } from "../../chaos/partitions.js";

test("same seed, same schedule; another seed, another schedule", (t) => {
  const o = { seed: "7", nodes: [1, 2, 3], durationMs: 120_000 };
  t.deepEqual(generateSchedule(o), generateSchedule({ ...o }));
  t.notDeepEqual(generateSchedule(o), generateSchedule({ ...o, seed: "8" }));
});

test("a schedule stays inside the run, faults do not overlap, and every kind appears over a long run", (t) => {
  const s = generateSchedule({ seed: "abc", nodes: [1, 2, 3, 4, 5], durationMs: 600_000 });
  let end = 0;
  for (const f of s) {
    t.true(f.atMs >= end, "one fault at a time");
    end = f.atMs + faultSpanMs(f.fault);
    t.true(end <= 600_000);
  }
  const kinds = new Set(s.map((f) => f.fault.kind));
  for (const k of ["kill", "kill-minority", "pause", "partition", "latency", "reset-links", "recovery-kill", "snapshot-kill"]) t.true(kinds.has(k as never), k);
});

test("fewer than 3 nodes is refused", (t) => {
  t.throws(() => generateSchedule({ seed: "1", nodes: [1, 2], durationMs: 1000 }), { instanceOf: RangeError });
});

test("the PRNG is deterministic and in [0, 1)", (t) => {
  const a = seededRandom("x");
  const b = seededRandom("x");
  for (let i = 0; i < 100; i++) {
    const v = a();
    t.is(v, b());
    t.true(v >= 0 && v < 1);
  }
});

class FakeExecutor implements NemesisExecutor {
  readonly calls: string[] = [];
  down = new Set<number>();
  constructor(readonly nodes: readonly number[], private lead = 2, private phaseUser: string | null = "alice") {}
  async killNode(id: number) { if (this.down.has(id)) throw new Error(`node ${id} already down`); this.down.add(id); this.calls.push(`kill ${id}`); }
  async restartNode(id: number) { this.down.delete(id); this.calls.push(`restart ${id}`); }
  async pause(id: number) { this.calls.push(`pause ${id}`); }
  async resume(id: number) { this.calls.push(`resume ${id}`); }
  async partition(spec: PartitionSpec) { this.calls.push(`partition ${spec.kind}`); }
  async setLatency(ms: number) { this.calls.push(`latency ${ms}`); }
  async resetLinks() { this.calls.push("reset"); }
  async heal() { this.calls.push("heal"); }
  async leader() { return this.lead; }
  async waitRecoveryPhase(phase: RecoveryPhase) { this.calls.push(`wait ${phase}`); return this.phaseUser ?? undefined; }
  async sleep() {}
}

test("a leader-targeted kill kills the current leader and restarts it, recording start and end", async (t) => {
  const ex = new FakeExecutor([1, 2, 3]);
  const h = new HistoryWriter(null, () => 0);
  await runFault(ex, { kind: "kill", target: { role: "leader" }, downMs: 10 }, h, seededRandom("s"));
  t.deepEqual(ex.calls, ["kill 2", "restart 2"]);
  t.deepEqual(h.events.map((e) => (e.type === "nemesis" ? `${e.fault} ${e.target} ${e.phase}` : "")), ["kill node-2 start", "kill node-2 end"]);
});

test("a recovery-timed kill waits for the phase first, and records a miss when no recovery came", async (t) => {
  const ex = new FakeExecutor([1, 2, 3], 1, null);
  const h = new HistoryWriter(null, () => 0);
  await runFault(ex, { kind: "recovery-kill", phase: "before-confirm", target: { node: 3 }, downMs: 10 }, h, seededRandom("s"));
  t.deepEqual(ex.calls, ["wait before-confirm", "kill 3", "restart 3"]);
  t.true(h.events.some((e) => e.type === "nemesis" && e.fault === "recovery-kill-missed"));
});

test("kill-minority on 5 nodes kills two distinct nodes; snapshot-kill kills a follower twice", async (t) => {
  const ex = new FakeExecutor([1, 2, 3, 4, 5]);
  const h = new HistoryWriter(null, () => 0);
  await runFault(ex, { kind: "kill-minority", downMs: 1 }, h, seededRandom("m"));
  t.is(ex.calls.filter((c) => c.startsWith("kill")).length, 2);
  t.is(ex.down.size, 0);
  const ex2 = new FakeExecutor([1, 2, 3]);
  await runFault(ex2, { kind: "snapshot-kill", laggingMs: 1, downMs: 1 }, h, seededRandom("m"));
  const kills = ex2.calls.filter((c) => c.startsWith("kill"));
  t.is(kills.length, 2);
  t.not(kills[0], "kill 2", "not the leader");
});

test("runSchedule runs every fault and heals at the end", async (t) => {
  const ex = new FakeExecutor([1, 2, 3]);
  const h = new HistoryWriter(null, () => 1e9);
  const schedule = generateSchedule({ seed: "run", nodes: [1, 2, 3], durationMs: 30_000 });
  const n = await runSchedule(ex, schedule, h, "run", () => false);
  t.is(n, schedule.length);
  t.is(ex.calls.at(-1), "heal");
  t.is(ex.down.size, 0);
});

test("a fault that cannot be injected is recorded and the schedule goes on, healed", async (t) => {
  const ex = new FakeExecutor([1, 2, 3]);
  ex.killNode = async () => {
    throw new Error("no such process");
  };
  const h = new HistoryWriter(null, () => 1e9);
  const n = await runSchedule(ex, [{ atMs: 0, fault: { kind: "kill", target: { node: 1 }, downMs: 1 } }, { atMs: 0, fault: { kind: "pause", target: { node: 2 }, downMs: 1 } }], h, "e", () => false);
  t.is(n, 1);
  t.true(h.events.some((e) => e.type === "nemesis" && e.fault === "nemesis-error" && e.target === "no such process"));
  t.true(ex.calls.includes("pause 2") && ex.calls.at(-1) === "heal");
});

test("a schedule restricted to some kinds contains only those, and stays deterministic", (t) => {
  const kinds = ["kill", "kill-minority", "recovery-kill"] as const;
  const o = { seed: "k8s", nodes: [1, 2, 3], durationMs: 600_000, kinds };
  const s = generateSchedule(o);
  t.true(s.length > 50);
  t.deepEqual([...new Set(s.map((f) => f.fault.kind))].sort(), [...kinds].sort());
  t.deepEqual(generateSchedule({ ...o }), s);
  const withNet = generateSchedule({ ...o, kinds: [...kinds, "partition", "latency"] });
  t.true(withNet.some((f) => f.fault.kind === "partition") && withNet.some((f) => f.fault.kind === "latency"));
  t.false(withNet.some((f) => ["pause", "reset-links", "snapshot-kill"].includes(f.fault.kind)));
});

test("without kinds the schedule is the one of every kind; an empty or unknown kind list is refused", (t) => {
  const o = { seed: "7", nodes: [1, 2, 3], durationMs: 120_000 };
  t.deepEqual(generateSchedule({ ...o, kinds: FAULT_KINDS }), generateSchedule(o));
  t.throws(() => generateSchedule({ ...o, kinds: [] }), { instanceOf: RangeError, message: /at least one fault kind/ });
  t.throws(() => generateSchedule({ ...o, kinds: ["meteor" as never] }), { instanceOf: RangeError, message: /unknown fault kind "meteor"/ });
});
