// The process's open-file limit against what the node may hold: every
// port's connection cap (proto/connection-gate.ts), plus its own files
// (Raft log segments, the store, the audit log, the HSM module) and its
// outbound channels. A limit below that turns a connection flood the caps
// are sized for into EMFILE on the node's own files; the node says so at
// start, once, instead of failing later. Linux only (/proc/self/limits);
// elsewhere nothing is checked.
import { readFileSync } from "node:fs";

/** Descriptors the node holds besides its ports' connections: files, channels to peers, the HSM. Measured at ~60 on an idle node; kept generous. */
export const OWN_DESCRIPTORS = 256;

/** The soft limit on open files in a /proc/PID/limits text; null when the line is absent or the limit is unlimited. */
export function softOpenFilesLimit(limits: string): number | null {
  const line = limits.split("\n").find((l) => l.startsWith("Max open files"));
  const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0];
  return soft === undefined || !/^\d+$/.test(soft) ? null : Number(soft);
}

/** Reads this process's soft open-file limit; null when it cannot be read (not Linux) or is unlimited. */
export function readOpenFilesLimit(read: () => string = () => readFileSync("/proc/self/limits", "utf8")): number | null {
  try {
    return softOpenFilesLimit(read());
  } catch {
    return null;
  }
}

/** The limit's shortfall: null when `limit` (or its absence) leaves room for `connections` plus OWN_DESCRIPTORS. */
export function openFilesShortfall(limit: number | null, connections: number): { limit: number; needed: number } | null {
  const needed = connections + OWN_DESCRIPTORS;
  return limit === null || limit >= needed ? null : { limit, needed };
}
