// Reads a .cpuprofile (node --cpu-prof): self and inclusive ms per function,
// or self ms per source file of this repository (each sample charged to the
// nearest frame of ours above it; samples with none to the library or to
// node's internals), optionally only within [--from, --to] (monotonic µs, as
// bench/round-cost.ts --windows writes them) and divided by --per (e.g. the
// window's calls, for ms per call). With --stretches: the longest runs of
// samples without an (idle) one and under one task (the event loop's longest
// busy stretches; their wall length includes time the machine gave other
// processes: they are ranked by their samples, which the profiler takes
// while the thread runs), each with its top functions, inclusive.
// Run: npx tsx bench/cpuprofile.ts FILE [--from US --to US] [--per N] [--top 40] [--by function|file] [--grep TEXT]
//      npx tsx bench/cpuprofile.ts FILE --stretches [--top 5] [--from US]  (--from: past the start, e.g. the first stretches are module loading)
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number }

/** µs of samples per leaf node id, within [from, to]. */
function selfTimes(p: Profile, from: number, to: number): Map<number, number> {
  const self = new Map<number, number>();
  let t = p.startTime;
  p.samples.forEach((id, i) => {
    t += p.timeDeltas[i]!;
    if (t >= from && t <= to) self.set(id, (self.get(id) ?? 0) + p.timeDeltas[i]!);
  });
  return self;
}

function frameName(n: ProfileNode): string {
  const c = n.callFrame;
  return `${c.functionName || "(anonymous)"} ${c.url.replace(/^.*\/node_modules\//, "").replace(/^.*\//, "")}:${c.lineNumber + 1}`;
}

const OURS = /\/(node|proto|bench|testkit|client)\/[^/]+/;

/** The file of ours nearest above `id`, else the first library or "node internals". */
function fileOf(id: number, byId: Map<number, ProfileNode>, parent: Map<number, number>): string {
  let lib = "";
  for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
    const { functionName, url } = byId.get(x)!.callFrame;
    if (x === id && functionName.startsWith("(") && url === "") return functionName; // (idle), (program), (garbage collector)
    if (!url.includes("node_modules/") && OURS.test(url)) return url.slice(url.search(OURS) + 1);
    if (lib === "" && url.includes("node_modules/")) lib = url.split("node_modules/").at(-1)!.split("/").slice(0, 2).join("/");
  }
  return lib === "" ? "node internals" : lib;
}

interface Stretch { from: number; to: number; samples: number[] }

/**
 * The runs of non-idle samples, most samples first (t: the time each sample ends,
 * as selfTimes counts it). A run is also cut where the task under (root)
 * changes (e.g. from the Ready loop's setImmediate to a socket's callback):
 * a busy machine may never let the event loop idle between its turns.
 */
function busyStretches(p: Profile, idle: Set<number>, task: (id: number) => number, from: number, to: number): Stretch[] {
  const out: Stretch[] = [];
  let cur: Stretch | null = null;
  let curTask = -1;
  let t = p.startTime;
  p.samples.forEach((id, i) => {
    t += p.timeDeltas[i]!;
    if (idle.has(id) || t < from || t > to) { cur = null; return; }
    const k = task(id);
    if (k !== -1 && k !== curTask) cur = null; // -1: (garbage collector), (program): part of the task around them
    if (k !== -1) curTask = k;
    if (cur === null) out.push(cur = { from: t - p.timeDeltas[i]!, to: t, samples: [] });
    cur.to = t;
    cur.samples.push(i);
  });
  return out.sort((a, b) => b.samples.length - a.samples.length);
}

/** The child of (root) that sample node `id` runs under; -1 for V8's own entries ((program), (garbage collector)). */
function taskOf(byId: Map<number, ProfileNode>, parent: Map<number, number>): (id: number) => number {
  return (id) => {
    let x = id;
    while (parent.has(parent.get(x)!)) x = parent.get(x)!;
    return parent.has(x) && !byId.get(x)!.callFrame.functionName.startsWith("(") ? x : -1;
  };
}

/** Per stretch: its length and its top functions by inclusive ms (each frame once per sample). */
function printStretches(p: Profile, byId: Map<number, ProfileNode>, parent: Map<number, number>, top: number, [from, to]: [number, number]): void {
  const idle = new Set(p.nodes.filter((n) => n.callFrame.functionName === "(idle)").map((n) => n.id));
  for (const s of busyStretches(p, idle, taskOf(byId, parent), from, to).slice(0, top)) {
    const inclusive = new Map<string, number>();
    for (const i of s.samples) {
      const seen = new Set<string>();
      for (let x: number | undefined = p.samples[i]; x !== undefined; x = parent.get(x)) seen.add(frameName(byId.get(x)!));
      for (const k of seen) inclusive.set(k, (inclusive.get(k) ?? 0) + p.timeDeltas[i]!);
    }
    print(`stretch at ${s.from.toFixed(0)} µs: ${((s.to - s.from) / 1000).toFixed(1)} ms, ${s.samples.length} samples; inclusive`, inclusive, 1, 25, "");
  }
}

function print(title: string, m: Map<string, number>, per: number, top: number, grep: string): void {
  console.log(`-- ${title} (ms${per === 1 ? "" : ` / ${per}`})`);
  const rows = [...m].filter(([k]) => k.includes(grep)).sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [k, us] of rows) console.log(`${(us / 1000 / per).toFixed(3).padStart(10)}  ${k}`);
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      from: { type: "string", default: "0" }, to: { type: "string", default: "Infinity" }, per: { type: "string", default: "1" },
      top: { type: "string", default: "40" }, stretches: { type: "boolean", default: false }, by: { type: "string", default: "function" }, grep: { type: "string", default: "" },
    },
  });
  const p = JSON.parse(readFileSync(positionals[0]!, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  if (values.stretches) { printStretches(p, byId, parent, Number(values.top), [Number(values.from), Number(values.to)]); return; }
  const self = selfTimes(p, Number(values.from), Number(values.to));
  const [per, top] = [Number(values.per), Number(values.top)];
  console.log(`sampled ${([...self.values()].reduce((a, b) => a + b, 0) / 1000).toFixed(0)} ms`);
  const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us);
  if (values.by === "file") {
    const files = new Map<string, number>();
    for (const [id, us] of self) add(files, fileOf(id, byId, parent), us);
    print("self by file of ours", files, per, top, values.grep);
    return;
  }
  const selfBy = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) {
    add(selfBy, frameName(byId.get(id)!), us);
    const seen = new Set<string>();
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
      const k = frameName(byId.get(x)!);
      if (!seen.has(k)) add(inclusive, k, us);
      seen.add(k);
    }
  }
  print("self", selfBy, per, top, values.grep);
  print("inclusive", inclusive, per, top, values.grep);
}

main();
