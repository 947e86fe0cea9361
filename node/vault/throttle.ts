// Attempt throttling (docs/vault.md §3, "Throttling"): after a few attempts
// that were not confirmed, a record's next BeginRecovery waits for a delay
// that grows with the attempts counted, as iOS does for passcodes and
// Apple's escrow service for recovery attempts. Time is the leader-assigned
// time of the entries (commands.ts, stamped envelope), so every node decides
// the same. Pure: no clock here.
//
// A schedule is `free` attempts without delay, then delays[i] ms before the
// attempt that follows free + i counted ones (the last delay repeats).
// The cluster's schedule is fixed in its state at bootstrap (meta
// "throttle"); every record follows it.
//
// Encoding: u8 free || u8 n || n × u32 delay (seconds).
import { InvalidEncodingError, Reader, Writer } from "../../proto/crypto/index.js";

export interface ThrottleSchedule {
  /** Attempts counted without any delay (0-255). */
  readonly free: number;
  /** Delays in ms after free, free + 1, ... counted attempts; the last repeats; empty: never throttled. */
  readonly delaysMs: readonly number[];
}

/**
 * The default: 3 attempts at once, then 30 s, 1 min, 5 min, 15 min, and
 * one hour between every further attempt. A user who types the password
 * wrong twice and then right is never delayed; with the default guess limit
 * of 10, using every guess takes over four hours.
 */
export const DEFAULT_THROTTLE: ThrottleSchedule = { free: 3, delaysMs: [30, 60, 300, 900, 3600].map((s) => s * 1000) };
/** No throttling (tests, and clusters whose front end throttles). */
export const NO_THROTTLE: ThrottleSchedule = { free: 0, delaysMs: [] };
const MAX_DELAYS = 32;
const MAX_DELAY_S = 7 * 24 * 3600;

/** When the next begin on a record with `attempts` counted, the last begun at `lastBeginAt`, may count (ms). */
export function notBefore(s: ThrottleSchedule, attempts: number, lastBeginAt: number): number {
  if (attempts < s.free || s.delaysMs.length === 0) return 0;
  const delay = s.delaysMs[Math.min(attempts - s.free, s.delaysMs.length - 1)] ?? 0;
  return lastBeginAt + delay;
}

export function validateSchedule(s: ThrottleSchedule): void {
  if (!Number.isInteger(s.free) || s.free < 0 || s.free > 255) throw new InvalidEncodingError(`throttle: free attempts ${s.free} not in [0, 255]`);
  if (s.delaysMs.length > MAX_DELAYS) throw new InvalidEncodingError(`throttle: more than ${MAX_DELAYS} delays`);
  for (const d of s.delaysMs) {
    if (!Number.isInteger(d / 1000) || d < 0 || d > MAX_DELAY_S * 1000) throw new InvalidEncodingError(`throttle: delay ${d} ms is not whole seconds in [0, ${MAX_DELAY_S} s]`);
  }
}

export function encodeSchedule(s: ThrottleSchedule): Uint8Array {
  validateSchedule(s);
  const w = new Writer().u8(s.free).u8(s.delaysMs.length);
  for (const d of s.delaysMs) w.u32(d / 1000);
  return w.bytes();
}

export function decodeSchedule(bytes: Uint8Array): ThrottleSchedule {
  const r = new Reader(bytes, "throttle schedule");
  const free = r.u8();
  const delaysMs = Array.from({ length: r.u8() }, () => r.u32() * 1000);
  r.end();
  const s = { free, delaysMs };
  validateSchedule(s);
  return s;
}
