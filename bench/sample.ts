// Timing helpers shared by the benchmarks: wall and CPU time of synchronous
// work, reported as medians, and the CPU time of another process. On a
// loaded machine CPU is the steadier one.
import { readFileSync } from "node:fs";
import { procStatusKib } from "../node/server/metrics.js";

/** Wall and CPU (user+system of the process, GC threads included) milliseconds. */
export interface Sample {
  wall: number;
  cpu: number;
}

/** One call of fn, timed; returns its value with the sample. */
export function measureOnce<T>(fn: () => T): Sample & { value: T } {
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  const value = fn();
  const wall = performance.now() - w0;
  const c = process.cpuUsage(c0);
  return { value, wall, cpu: (c.user + c.system) / 1000 };
}

/** Runs fn `runs` times after one warm-up; returns the median wall and CPU ms. */
export function measure(runs: number, fn: () => unknown): Sample {
  fn();
  const samples: Sample[] = [];
  for (let i = 0; i < runs; i++) samples.push(measureOnce(fn));
  return medianSample(samples);
}

/** The median wall and the median CPU of samples (each taken on its own). */
export function medianSample(samples: readonly Sample[]): Sample {
  return { wall: median(samples.map((s) => s.wall)), cpu: median(samples.map((s) => s.cpu)) };
}

/** The upper median (NaN for none). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** The q-quantile of ascending `sorted` (NaN for none). */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

/** CPU seconds (user + system) used so far by process `pid` (Linux /proc; NaN elsewhere). */
export function processCpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

/** Resident memory of a process, MiB: VmRSS, and its anonymous (heap and the rest) and file-backed (mapped store pages) parts. */
export interface ProcMemory {
  rss: number;
  anon: number;
  file: number;
}

/** The resident memory of process `pid` (Linux /proc; zeros when it is gone). */
export function procMemory(pid: number): ProcMemory {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "latin1");
    const mib = (name: string) => (procStatusKib(name, status) ?? 0) / 1024;
    return { rss: mib("VmRSS"), anon: mib("RssAnon"), file: mib("RssFile") };
  } catch {
    return { rss: 0, anon: 0, file: 0 };
  }
}

/** A histogram's running sum and count (Prometheus text: `name_sum`, `name_count`), of its first series or the first with `label`. */
export function histogramOf(text: string, name: string, label?: string): { sum: number; count: number } {
  return { sum: metricOf(text, `${name}_sum`, label), count: metricOf(text, `${name}_count`, label) };
}

/** The value of a metric in a Prometheus text exposition, its first series or the first with `label` (e.g. 'space="new"'); 0 if absent. */
export function metricOf(text: string, name: string, label?: string): number {
  const line = text.split("\n").find((l) => (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) && (label === undefined || l.includes(label)));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

/** A thread's time on a core and waiting for one in the run queue, ms since it started. */
export interface SchedTimes {
  ranMs: number;
  waitedMs: number;
}

/** Process `pid`'s main thread's SchedTimes (/proc/PID/schedstat: the thread-group leader's own; undefined when gone). */
export function mainThreadSched(pid: number): SchedTimes | undefined {
  try {
    const [ran, waited] = readFileSync(`/proc/${pid}/schedstat`, "latin1").split(" ").map(Number);
    return ran === undefined || waited === undefined ? undefined : { ranMs: ran / 1e6, waitedMs: waited / 1e6 };
  } catch {
    return undefined;
  }
}

/** The host's CPU time so far, in clock ticks, from /proc/stat's "cpu" line (all cores). */
export interface HostCpu {
  busy: number;
  iowait: number;
  /** Time the hypervisor ran something else while this machine had work (a noisy neighbour). */
  steal: number;
  total: number;
}

/** The host's HostCpu now (zeros where /proc/stat is missing). */
export function hostCpu(): HostCpu {
  try {
    const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync("/proc/stat", "latin1").split("\n")[0]!.split(/\s+/).slice(1).map(Number);
    const busy = user! + nice! + system! + irq! + softirq!;
    return { busy, iowait: iowait!, steal: steal!, total: busy + idle! + iowait! + steal! };
  } catch {
    return { busy: 0, iowait: 0, steal: 0, total: 0 };
  }
}

/** "busy B%, iowait W%, steal S%" of all cores between two readings (steal: the hypervisor's, not ours). */
export function describeHostCpu(before: HostCpu, after: HostCpu): string {
  const total = after.total - before.total;
  const pct = (k: keyof HostCpu) => (total > 0 ? ((100 * (after[k] - before[k])) / total).toFixed(k === "busy" ? 0 : 1) : "?");
  return `host busy ${pct("busy")}%, iowait ${pct("iowait")}%, steal ${pct("steal")}%`;
}
