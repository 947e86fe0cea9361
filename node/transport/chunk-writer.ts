// Writes a stream of chunks to a server-streaming call: the one way a node
// sends a snapshot's bytes (RaftService.FetchSnapshot to a follower,
// AdminService.SaveSnapshot to an operator).
//
// Contract: one message at a time, with backpressure (a write() that returns
// false waits for 'drain'), and a turn of the event loop between chunks, so
// a large transfer never holds the loop. A caller that goes away (a cancel,
// its deadline), also while the writer waits for 'drain', stops the writing:
// the iteration of `chunks` is ended early, so the source's cleanup (a
// generator's finally: a pinned store view released) runs. So does a
// receiver that reads nothing for STALL_MS while the writer waits: a peer or
// an operator's client that stops reading would otherwise hold the view, and
// with it every store page freed after it, for as long as its connection
// lives. Never ends the call: the caller's handler does, by the outcome.
import { setImmediate as nextTurn } from "node:timers/promises";
import type * as grpc from "@grpc/grpc-js";

/** How long the writer waits for a receiver that reads nothing before it gives up (the transfer's outcome "stalled"). */
export const STALL_MS = 60_000;

/** Where a transfer's time went, in ms: reading and encoding the chunks, and waiting for the receiver (its flow-control window). */
export interface SendSpent {
  chunks: number;
  ms: number;
  readMs: number;
  waitedMs: number;
  /** "done": every chunk written; "cancelled": the caller went away first; "stalled": it read nothing for the stall limit. */
  outcome: "done" | "cancelled" | "stalled";
}

/** Writes each chunk of `chunks` to `call` as `message(chunk)` (the contract above). */
export async function writeChunks<Req, Res>(
  call: grpc.ServerWritableStream<Req, Res>, chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, message: (data: Uint8Array) => Res,
  stallMs = STALL_MS,
): Promise<SendSpent> {
  const spent: SendSpent = { chunks: 0, ms: 0, readMs: 0, waitedMs: 0, outcome: "done" };
  const t0 = performance.now();
  let t = t0;
  for await (const data of chunks) {
    if (call.cancelled) break;
    spent.chunks++;
    const written = call.write(message(data));
    const w = performance.now();
    spent.readMs += w - t;
    if (!written && !(await drainedOrCancelled(call, stallMs))) {
      spent.outcome = "stalled";
      break;
    }
    if (call.cancelled) break;
    await nextTurn();
    t = performance.now();
    spent.waitedMs += t - w;
  }
  if (call.cancelled) spent.outcome = "cancelled";
  spent.ms = performance.now() - t0;
  for (const k of ["ms", "readMs", "waitedMs"] as const) spent[k] = Math.round(spent[k]);
  return spent;
}

/** The status message of a transfer that ended "stalled" at the default limit (the handlers' DEADLINE_EXCEEDED). */
export function stallMessage(spent: SendSpent): string {
  return `the receiver read nothing for ${STALL_MS / 1000} s after ${spent.chunks} chunks; the transfer was ended`;
}

/**
 * Resolves true at the call's next 'drain' or when the caller is gone ('cancelled' is emitted once, maybe
 * already), false when neither came within `stallMs`.
 */
function drainedOrCancelled(call: grpc.ServerWritableStream<unknown, unknown>, stallMs: number): Promise<boolean> {
  if (call.cancelled) return Promise.resolve(true);
  return new Promise((resolve) => {
    const end = (moved: boolean): void => {
      clearTimeout(timer);
      call.off("drain", done);
      call.off("cancelled", done);
      resolve(moved);
    };
    const done = (): void => end(true);
    const timer = setTimeout(() => end(false), stallMs);
    call.on("drain", done);
    call.on("cancelled", done);
  });
}
