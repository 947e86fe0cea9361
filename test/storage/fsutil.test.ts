// writeFully (node/storage/fsutil.ts), the WAL's and the audit log's write
// loop: write(2) may write fewer bytes than asked.
import test from "ava";
import { writeFully } from "../../node/storage/index.js";

test("writeFully calls write until every byte is written, in order, whatever each call wrote", async (t) => {
  const buf = Uint8Array.from({ length: 100 }, (_, i) => i);
  const out: number[] = [];
  const calls: Array<[number, number]> = [];
  await writeFully(buf, async (offset, length) => {
    calls.push([offset, length]);
    const n = Math.min(length, 1 + (calls.length % 7)); // short writes of 1..7 bytes
    out.push(...buf.subarray(offset, offset + n));
    return n;
  });
  t.deepEqual(out, [...buf]);
  t.deepEqual(calls[0], [0, 100]);
  t.true(calls.every(([offset, length]) => offset + length === 100), "each call asks for the rest");
});

test("writeFully makes no call for an empty buffer and passes a write's failure on", async (t) => {
  let calls = 0;
  await writeFully(new Uint8Array(0), async () => { calls++; return 0; });
  t.is(calls, 0);
  const err = new Error("ENOSPC");
  await t.throwsAsync(() => writeFully(new Uint8Array(3), async () => { throw err; }), { is: err });
});
