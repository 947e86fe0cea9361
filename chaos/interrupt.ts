// SIGINT / SIGTERM / SIGHUP handling shared by the chaos CLIs, and the last
// resorts that keep a run from leaving node processes behind.
import { constants } from "node:os";
import type { ChaosTarget } from "./target.js";

/** How long the cleanup after a signal may take before the processes are killed outright. */
export const FORCED_EXIT_MS = 20_000;

/**
 * Signals within this long of the first are the same interrupt: a Ctrl-C reaches the whole foreground
 * process group, and `npm run` and tsx relay it to the harness again, so one keypress arrives two or
 * three times within milliseconds. Only a signal after this is a second, forcing, interrupt.
 */
export const REPEAT_GRACE_MS = 1000;

export const INTERRUPT_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** The exit code of a run interrupted by `sig`: 128 + its number, as a shell reports it (130 for SIGINT). */
export function interruptExitCode(sig: NodeJS.Signals): number {
  return 128 + (constants.signals[sig] ?? 0);
}

export interface InterruptHooks {
  /** Called once, on the first signal: aborts the run. */
  abort(sig: NodeJS.Signals): void;
  /** Called on a second signal (after REPEAT_GRACE_MS) or when the cleanup exceeds FORCED_EXIT_MS; must not return. */
  force(why: string, sig: NodeJS.Signals): never;
  log(line: string): void;
  now?: () => number;
}

/** The decision part of the signal handling, without process globals (tests drive it directly). */
export class InterruptState {
  received: NodeJS.Signals | undefined;
  private at = 0;

  constructor(private readonly hooks: InterruptHooks) {}

  handle(sig: NodeJS.Signals): void {
    const now = this.hooks.now?.() ?? Date.now();
    if (this.received === undefined) {
      this.received = sig;
      this.at = now;
      this.hooks.log(`${sig} received: stopping the workload and the processes this run started (again after ${REPEAT_GRACE_MS / 1000} s to kill them outright)`);
      this.hooks.abort(sig);
      return;
    }
    if (now - this.at < REPEAT_GRACE_MS) return; // the same keypress, relayed
    this.hooks.force(`second ${sig}`, this.received);
  }
}

/** What a forced exit (or the process's exit) must do synchronously: kill processes, remove files. */
export interface LastResort {
  target?: Pick<ChaosTarget, "killAllSync">;
  /** Removes what the run must not leave behind (data dirs, tokens); synchronous. */
  cleanupSync?: () => void;
}

/** Runs the last resort: kills the target's processes and cleans up; returns how many processes it signalled. */
export function runLastResort(r: LastResort): number {
  const n = r.target?.killAllSync() ?? 0;
  try {
    r.cleanupSync?.();
  } catch {
    // best effort: the process is exiting
  }
  return n;
}

/**
 * Makes a broken stdout/stderr pipe (`npm run chaos | head`, a closed terminal) harmless: the write is
 * dropped instead of an uncaught EPIPE crashing the harness mid-run.
 */
export function ignoreBrokenPipes(): void {
  for (const s of [process.stdout, process.stderr])
    s.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EPIPE" && err.code !== "EIO") throw err;
    });
}
