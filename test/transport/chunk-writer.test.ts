// writeChunks alone, on a fake server-streaming call (an EventEmitter with
// write, cancelled and the 'drain'/'cancelled' events grpc-js emits): every
// chunk is written when the receiver keeps up; a receiver that goes away or
// reads nothing for the stall limit ends the writing, and the source's
// cleanup runs in both cases (the node's: a pinned store view released).
import test from "ava";
import { EventEmitter } from "node:events";
import type * as grpc from "@grpc/grpc-js";
import { writeChunks } from "../../node/transport/index.js";

/** A call whose write() returns `accepts(n)` for the n-th message (false: the receiver's window is full). */
class FakeCall extends EventEmitter {
  cancelled = false;
  readonly written: Uint8Array[] = [];
  constructor(private readonly accepts: (n: number) => boolean) {
    super();
  }

  write(m: Uint8Array): boolean {
    this.written.push(m);
    return this.accepts(this.written.length);
  }

  cancel(): void {
    this.cancelled = true;
    this.emit("cancelled", "cancelled");
  }
}

/** Resolves once `cond()` holds, checked every millisecond. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 1));
}

const asCall = (c: FakeCall) => c as unknown as grpc.ServerWritableStream<unknown, Uint8Array>;

/** A source of `n` one-byte chunks that counts what it served and whether its cleanup ran. */
function source(n: number): { chunks: Generator<Uint8Array>; served: number; closed: boolean } {
  const s = { served: 0, closed: false, chunks: null as unknown as Generator<Uint8Array> };
  s.chunks = (function* () {
    try {
      for (let i = 0; i < n; i++, s.served++) yield Uint8Array.of(i);
    } finally {
      s.closed = true;
    }
  })();
  return s;
}

test("a receiver that keeps up gets every chunk in order; a full window waits for 'drain'", async (t) => {
  const call = new FakeCall((n) => n % 3 !== 0);
  const drains = setInterval(() => call.emit("drain"), 5);
  t.teardown(() => clearInterval(drains));
  const src = source(10);
  const spent = await writeChunks(asCall(call), src.chunks, (d) => d);
  t.is(spent.outcome, "done");
  t.is(spent.chunks, 10);
  t.deepEqual(call.written.map((m) => m[0]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.true(src.closed);
});

test("a caller that cancels while the writer waits for 'drain' ends the writing at once and closes the source", async (t) => {
  const call = new FakeCall((n) => n < 4);
  const src = source(100);
  let settled = false;
  const writing = writeChunks(asCall(call), src.chunks, (d) => d, 60_000).finally(() => { settled = true; });
  // Cancelled once the writer waits for 'drain': a 50 ms timer came first on a
  // loaded machine (the writer yields a turn between chunks), after 3 writes.
  await until(() => settled || call.listenerCount("drain") > 0);
  call.cancel();
  const spent = await writing;
  t.is(spent.outcome, "cancelled");
  t.is(call.written.length, 4, "nothing is written after the window filled");
  t.true(src.closed, "the source's cleanup ran");
  t.true(src.served < 100);
  t.is(call.listenerCount("drain") + call.listenerCount("cancelled"), 0, "no listener is left on the call");
});

test("a receiver that reads nothing for the stall limit ends the writing and closes the source", async (t) => {
  const call = new FakeCall((n) => n < 2);
  const src = source(100);
  const t0 = performance.now();
  const spent = await writeChunks(asCall(call), src.chunks, (d) => d, 100);
  t.is(spent.outcome, "stalled");
  t.true(performance.now() - t0 >= 95);
  t.is(call.written.length, 2);
  t.true(src.closed);
  t.is(call.listenerCount("drain") + call.listenerCount("cancelled"), 0);
});

test("an async source (SaveSnapshot's) is ended the same way: its finally runs", async (t) => {
  let closed = false;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    try {
      for (let i = 0; ; i++) yield await Promise.resolve(Uint8Array.of(i & 0xff));
    } finally {
      closed = true;
    }
  }
  const call = new FakeCall((n) => n < 3);
  const spent = await writeChunks(asCall(call), chunks(), (d) => d, 50);
  t.is(spent.outcome, "stalled");
  t.true(closed);
});

test("a call cancelled before the first chunk writes nothing", async (t) => {
  const call = new FakeCall(() => true);
  call.cancel();
  const src = source(5);
  const spent = await writeChunks(asCall(call), src.chunks, (d) => d);
  t.is(spent.outcome, "cancelled");
  t.is(call.written.length, 0);
  t.true(src.closed);
});
