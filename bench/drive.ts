// Load drivers shared by the cluster benchmarks: a closed loop of calls at a
// fixed number in flight, the CPU that server processes spend per call, the
// distinct blinded elements a BeginRecovery needs, and clean-up on exit.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { G, encodePoint, randomScalar } from "../proto/crypto/index.js";
import { processCpuSeconds } from "./sample.js";

export interface LoopResult {
  /** Calls that succeeded. */
  readonly n: number;
  /** Calls that failed (e.g. during an election under load). */
  readonly errors: number;
  /** The first failure's message, if any. */
  readonly firstError?: string;
  readonly seconds: number;
  /** Latencies of the successful calls, ms, ascending. */
  readonly lat: number[];
}

/**
 * Runs `inFlight` loops, each awaiting `call(i, loop)` back to back, for
 * `seconds` (i counts the calls across loops; loop is the loop's index).
 * `call` returns the latency to record, or undefined to record its wall time.
 */
export async function closedLoop(inFlight: number, seconds: number, call: (i: number, loop: number) => Promise<number | void>): Promise<LoopResult> {
  const lat: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: inFlight }, async (_, loop) => {
    while (performance.now() < end) {
      const a = performance.now();
      try {
        const ms = await call(next++, loop);
        lat.push(ms ?? performance.now() - a);
      } catch (err) {
        errors++;
        firstError ??= String(err).slice(0, 160);
      }
    }
  }));
  return { n: lat.length, errors, ...(firstError === undefined ? {} : { firstError }), seconds: (performance.now() - t0) / 1000, lat: lat.sort((a, b) => a - b) };
}

/** CPU of some processes and of this one over a stretch of work, per call. */
export class CpuMeter {
  private readonly before: number[];
  private readonly self = process.cpuUsage();

  constructor(private readonly pids: ReadonlyArray<number | undefined>) {
    this.before = pids.map(processCpuSeconds);
  }

  /** CPU ms per call since construction: one entry per pid, then this process. */
  perCall(calls: number): { servers: number[]; client: number } {
    const servers = this.pids.map((pid, i) => ((processCpuSeconds(pid) - this.before[i]!) * 1000) / calls);
    const c = process.cpuUsage(this.self);
    return { servers, client: (c.user + c.system) / 1000 / calls };
  }
}

/**
 * `n` distinct blinded elements (consecutive multiples of G from a random
 * start), made up front: a node remembers recently decoded points, and a real
 * client blinds every attempt afresh.
 */
export function distinctPoints(n: number): Uint8Array[] {
  let p = G.multiply(randomScalar());
  return Array.from({ length: n }, () => encodePoint(p = p.add(G)));
}

/** The 1-minute load average, one decimal. */
export function load(): string {
  return loadavg()[0]!.toFixed(1);
}

/**
 * Points TMPDIR at a new directory of this run (so every temp dir made from
 * here on, by this process or its children, lies inside it, even one whose
 * owner is interrupted before it says where) and returns the function that
 * runs `cleanup` once and then removes that directory (kept, and named,
 * with BKV_E2E_KEEP set, as LocalCluster keeps its own): call it when main
 * ends; it also runs on SIGINT/SIGTERM (then exits 130/143; repeated signals,
 * e.g. the terminal's and the one tsx relays, are ignored meanwhile).
 * `lastResort` runs synchronously in process 'exit' (kill children) if
 * cleanup did not finish, and the directory is removed then too.
 */
export function cleanupOnExit(cleanup: () => Promise<void>, lastResort: () => void): () => Promise<void> {
  const root = mkdtempSync(join(tmpdir(), "bkv-bench-"));
  process.env.TMPDIR = root;
  // BKV_E2E_KEEP keeps the clusters' directories (their nodes' logs), as LocalCluster.close does: so the run's too.
  const keep = process.env.BKV_E2E_KEEP !== undefined;
  const removeRoot = () => {
    if (keep) console.error(`BKV_E2E_KEEP: the run's files (the nodes' logs) are kept in ${root}`);
    else rmSync(root, { recursive: true, force: true });
  };
  let once: Promise<void> | undefined;
  let finished = false;
  const run = () => (once ??= cleanup().finally(() => { removeRoot(); finished = true; }));
  for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    process.on(sig, () => {
      if (once !== undefined) return;
      console.error(`\n${sig}: stopping the clusters and removing their files`);
      void run().finally(() => process.exit(code));
    });
  }
  process.once("exit", () => {
    if (finished) return;
    lastResort();
    removeRoot();
  });
  return run;
}

/** Whether a child process has ended (by exit or by signal). */
export function ended(p: ChildProcess): boolean {
  return p.exitCode !== null || p.signalCode !== null;
}

/**
 * SIGTERM to `p` unless it has ended; waits for its end, SIGKILL after
 * `graceMs`. (A child that a terminal's Ctrl-C already stopped emits no
 * second 'exit': never wait for one then.)
 */
export async function stopChild(p: ChildProcess, graceMs = 10_000): Promise<void> {
  if (ended(p)) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  const timer = setTimeout(() => p.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}
