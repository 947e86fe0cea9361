// Measures LmdbVaultStore alone: N puts of ~900 B values committed in
// batches of 1,000 (pipelined, at most 4 commits in flight), a full scan, a
// scan of a view, and the process RSS. Usage: tsx bench/vault-store.ts [N] [dir]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LmdbVaultStore } from "../node/storage/vault-store.js";
import { ALL_KEYS, snapshotChunks } from "../node/vault/index.js";

const n = Number(process.argv[2] ?? 1_000_000);
const dir = process.argv[3] ?? mkdtempSync(join(tmpdir(), "bkv-store-bench-"));
const store = await LmdbVaultStore.open(dir);
const value = new Uint8Array(900).map((_, i) => i & 0xff);
const key = (i: number): Uint8Array => { const k = Buffer.alloc(12); k.write("r", 0, "latin1"); k.write(i.toString(16).padStart(11, "0"), 1, "latin1"); return k; };
const mib = (x: number): string => (x / 2 ** 20).toFixed(0);

let t0 = performance.now();
const inflight: Promise<void>[] = [];
for (let i = 0; i < n; i++) {
  store.put(key(i), value);
  if (i % 1000 === 999) {
    inflight.push(store.commit());
    if (inflight.length >= 4) await inflight.shift();
  }
}
inflight.push(store.commit());
await Promise.all(inflight);
const putS = (performance.now() - t0) / 1000;
t0 = performance.now();
let count = 0;
for (const _ of store.scan(new Uint8Array(0), Uint8Array.of(0xff))) count++;
const scanS = (performance.now() - t0) / 1000;
const view = store.view();
t0 = performance.now();
let bytes = 0;
for (const [, v] of view.scan(new Uint8Array(0), Uint8Array.of(0xff))) bytes += v.length;
const viewS = (performance.now() - t0) / 1000;
let chunks = 0;
let chunkMaxMs = 0;
t0 = performance.now();
const stream = snapshotChunks("bench", view.scan(...ALL_KEYS));
for (let c0 = performance.now(), r = stream.next(); r.done !== true; c0 = performance.now(), r = stream.next()) {
  chunkMaxMs = Math.max(chunkMaxMs, performance.now() - c0);
  chunks++;
}
const streamS = (performance.now() - t0) / 1000;
view.release();
const st = await store.stats();
console.log(`snapshot stream: ${chunks} chunks in ${streamS.toFixed(1)} s, longest chunk ${chunkMaxMs.toFixed(1)} ms`);
console.log(`records: ${n}, put+commit s: ${putS.toFixed(1)}, scan s: ${scanS.toFixed(1)} (${count}), view scan s: ${viewS.toFixed(1)} (${mib(bytes)} MiB), file MiB: ${mib(st.fileBytes)}, rss MiB: ${mib(process.memoryUsage().rss)}`);
await store.close();
if (process.argv[3] === undefined) rmSync(dir, { recursive: true, force: true });
