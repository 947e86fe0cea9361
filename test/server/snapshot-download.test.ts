// The bounds of one snapshot download (node/server/snapshot-download.ts),
// with limits of milliseconds and kilobytes: an endless sender is cut at
// maxBytes, a stalled one after the idle limit although its source never
// returns, a trickle under the rate floor is cut while a sender at the floor
// is not, a download ends when the disk's available space falls under the
// reserve, an abort from outside ends a wait at once; and over real gRPC an
// endless FetchSnapshot is cut at the bound and the sender's source closed.
import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { DISK_CHECK_BYTES, type DownloadLimits, DownloadAbortedError, boundedChunks } from "../../node/server/snapshot-download.js";
import type { SnapshotSource } from "../../node/transport/index.js";
import { connectPair, makeCerts, makeNode } from "../transport/helpers.js";

const KIB = 1024;
const ROOMY = 1024 ** 4;
const LIMITS: DownloadLimits = { idleTimeoutMs: 60_000, minBytesPerSecond: 0, maxBytes: ROOMY, diskReserveBytes: 0 };

/** Reads `chunks` through boundedChunks; resolves with the bytes read and the error that ended it (null: the source ended). */
async function drain(chunks: AsyncIterable<Uint8Array>, limits: Partial<DownloadLimits>, o: { abort?: AbortController; freeBytes?: () => Promise<number> } = {}) {
  const abort = o.abort ?? new AbortController();
  let bytes = 0;
  const t0 = performance.now();
  try {
    for await (const c of boundedChunks(chunks, { limits: { ...LIMITS, ...limits }, abort, freeBytes: o.freeBytes ?? (() => Promise.resolve(ROOMY)) })) bytes += c.byteLength;
    return { bytes, error: null, ms: performance.now() - t0, abort };
  } catch (err) {
    return { bytes, error: err as Error, ms: performance.now() - t0, abort };
  }
}

async function* endless(chunkBytes: number): AsyncGenerator<Uint8Array> {
  for (;;) {
    yield new Uint8Array(chunkBytes);
    await sleep(0);
  }
}

/** `n` chunks, then a wait that never ends (a sender that stalls without closing). */
async function* stallsAfter(n: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < n; i++) yield new Uint8Array(KIB);
  await new Promise(() => {});
}

/**
 * `n` chunks of `bytes` at a steady rate: the i-th is due `everyMs` × i after
 * the first read, and those due while this process stalled come at once after
 * it, as from a socket's buffers. A sleep of `everyMs` per chunk fell behind
 * its rate for good at each stall: under load the test process stalled longer
 * than the idle limit during a wait, which the download charges to the sender,
 * and a sender at twice the floor was cut as slow (8,000 bytes in).
 */
async function* paced(n: number, bytes: number, everyMs: number): AsyncGenerator<Uint8Array> {
  const start = performance.now();
  for (let i = 1; i <= n; i++) {
    const wait = start + i * everyMs - performance.now();
    if (wait > 0) await sleep(wait);
    yield new Uint8Array(bytes);
  }
}

test("an endless sender is cut at maxBytes: the download's controller is aborted with reason size", async (t) => {
  const r = await drain(endless(16 * KIB), { maxBytes: 256 * KIB });
  t.true(r.error instanceof DownloadAbortedError);
  t.is((r.error as DownloadAbortedError).reason, "size");
  t.regex(r.error!.message, /over 262144 bytes \(snapshotDownload\.maxBytes\)/);
  t.true(r.bytes <= 256 * KIB, `${r.bytes} bytes passed on`);
  t.true(r.abort.signal.aborted, "the FetchSnapshot call is cancelled through the signal");
  t.is(r.abort.signal.reason, r.error);
});

test("a sender that stalls without closing is cut after idleTimeoutMs, though its source never returns", async (t) => {
  const r = await drain(stallsAfter(3), { idleTimeoutMs: 150 });
  t.is((r.error as DownloadAbortedError).reason, "idle");
  t.is(r.bytes, 3 * KIB);
  t.true(r.ms >= 140 && r.ms < 10_000, `ended after ${r.ms.toFixed(0)} ms`);
  t.true(r.abort.signal.aborted);
  const first = await drain(stallsAfter(0), { idleTimeoutMs: 100 });
  t.is((first.error as DownloadAbortedError).reason, "idle", "also before the first chunk (a sender that accepts the call and sends nothing)");
});

test("a trickle under minBytesPerSecond is cut (slow) though it is never idle; a sender at the floor is not", async (t) => {
  // 100 bytes every 20 ms = 5 KB/s against a floor of 50 KB/s: each wait costs 20 ms and pays back 2.
  const slow = await drain(paced(1_000, 100, 20), { idleTimeoutMs: 300, minBytesPerSecond: 50_000 });
  t.is((slow.error as DownloadAbortedError).reason, "slow");
  t.regex(slow.error!.message, /under 50000 bytes a second/);
  t.true(slow.ms >= 300 && slow.ms < 10_000, `cut after ${slow.ms.toFixed(0)} ms`);
  // 2,000 bytes every 20 ms = 100 KB/s: twice the floor, for 1.2 s, over two idle limits.
  const fine = await drain(paced(60, 2_000, 20), { idleTimeoutMs: 500, minBytesPerSecond: 50_000 });
  t.is(fine.error, null);
  t.is(fine.bytes, 120_000);
  const noFloor = await drain(paced(30, 1, 20), { idleTimeoutMs: 500 });
  t.is(noFloor.error, null, "minBytesPerSecond 0: only the idle limit");
});

test("a download ends when the staging file system's available space falls under the reserve; it is read first and every DISK_CHECK_BYTES", async (t) => {
  let free = 100 * 1024 * 1024;
  let reads = 0;
  let taken = 0;
  const freeBytes = (): Promise<number> => { reads++; return Promise.resolve(free - taken); };
  async function* filling(): AsyncGenerator<Uint8Array> {
    for (;;) {
      taken += 64 * KIB; // what the import writes, as the disk sees it
      yield new Uint8Array(64 * KIB);
    }
  }
  const r = await drain(filling(), { diskReserveBytes: 60 * 1024 * 1024 }, { freeBytes });
  t.is((r.error as DownloadAbortedError).reason, "disk");
  t.regex(r.error!.message, /under the reserve of 62914560 \(snapshotDownload\.diskReserveBytes\)/);
  t.true(free - taken < 60 * 1024 * 1024 && free - taken >= 60 * 1024 * 1024 - DISK_CHECK_BYTES - 64 * KIB, `${free - taken} bytes left`);
  t.is(reads, Math.ceil(r.bytes / DISK_CHECK_BYTES) + 1);
  free = 10;
  taken = 0;
  const none = await drain(filling(), { diskReserveBytes: 11 }, { freeBytes });
  t.is((none.error as DownloadAbortedError).reason, "disk");
  t.is(none.bytes, 0, "refused before the first chunk");
});

test("an abort from outside (preemption) ends a wait at once with its reason", async (t) => {
  const abort = new AbortController();
  const preempted = new DownloadAbortedError("preempted", "a newer term");
  setTimeout(() => abort.abort(preempted), 50);
  const r = await drain(stallsAfter(1), {}, { abort });
  t.is(r.error, preempted);
  t.true(r.ms < 10_000, `ended after ${r.ms.toFixed(0)} ms`);
});

test("over real gRPC: an endless FetchSnapshot is cut at maxBytes, the call cancelled and the sender's source closed", async (t) => {
  const certs = makeCerts([1, 2]);
  t.teardown(() => certs.cleanup());
  let served = 0;
  let closed = 0;
  const source: SnapshotSource = () => ({
    chunks: (function* () { for (;;) { served++; yield new Uint8Array(64 * KIB); } })(),
    close: () => void closed++,
  });
  const a = makeNode(1, certs.dir, { snapshotSource: source });
  const b = makeNode(2, certs.dir);
  t.teardown(async () => { await a.transport.stop(); await b.transport.stop(); });
  await connectPair(a, b);
  const abort = new AbortController();
  const r = await drain(b.transport.fetchSnapshot(1, 50, 2, abort.signal), { maxBytes: 2 * 1024 * 1024 }, { abort });
  t.is((r.error as DownloadAbortedError).reason, "size");
  t.is(r.bytes, 2 * 1024 * 1024);
  for (let i = 0; i < 200 && closed === 0; i++) await sleep(10);
  t.is(closed, 1, "the sender saw the call go and closed its source");
  const at = served;
  await sleep(100);
  t.is(served, at, "nothing more is read from the source");
});
