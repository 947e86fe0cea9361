// What SIGTERM and SIGINT do to a running node: a graceful stop (leadership
// transfer, drain, flush, HSM close), bounded. A stop that has not finished
// after the deadline ends the process with code 1: what the node
// acknowledged is durable already (the WAL and the store are synced before
// an answer), so exiting early is a crash the next start recovers from,
// never a lost write. Further signals during the stop change nothing:
// Ctrl-C reaches a node with its whole process group, and `npm start` then
// sends SIGTERM as well.
import type { Logger } from "./log.js";

/** How long a graceful stop may take before the process exits anyway (k8s waits 30 s before SIGKILL). */
export const STOP_DEADLINE_MS = 20_000;

export interface SignalStopOptions {
  readonly stop: () => Promise<void>;
  readonly log: Logger;
  /** A stop that failed: its error is the caller's to report (it exits 1). */
  readonly fatal: (err: unknown) => void;
  readonly exit: (code: number) => void;
  readonly deadlineMs?: number;
}

/** The handler to install for SIGTERM and SIGINT: the first signal stops; a stop past the deadline exits 1. */
export function signalStop(o: SignalStopOptions): (signal: string) => void {
  let stopping = false;
  const deadlineMs = o.deadlineMs ?? STOP_DEADLINE_MS;
  return (signal) => {
    if (stopping) return;
    stopping = true;
    o.log.info("stopping", { signal });
    const late = setTimeout(() => {
      o.log.error("the stop did not finish in time: exiting now", { deadlineMs });
      o.exit(1);
    }, deadlineMs);
    late.unref();
    o.stop().then(() => { clearTimeout(late); o.exit(0); }, (err: unknown) => { clearTimeout(late); o.fatal(err); });
  };
}
