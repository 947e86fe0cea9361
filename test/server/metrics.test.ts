// The node's memory gauges: RssAnon and RssFile of /proc/self/status, so that
// the store's mapped file pages (page cache) are told apart from what the
// node holds itself (issue 12), and what the anonymous part holds: array
// buffers, the Raft log kept in memory, the HSM worker threads' isolates.
// Also the metrics port, which answers 503 "starting" until the start ended.
import test from "ava";
import { EntryType, MemoryStorage } from "../../node/raft/index.js";
import { Metrics, logInMemory, procStatusKib, serveMetrics } from "../../node/server/metrics.js";
import type { AddressInfo } from "node:net";
import { newStats } from "../../node/transport/stats.js";

function valueOf(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.split(" ").at(-1));
}

test("the anonymous and file-backed resident sets are exported and add up to the resident set", async (t) => {
  const text = await new Metrics(() => null, { node: "1" }).registry.metrics();
  const anon = valueOf(text, "bkv_process_rss_anon_bytes");
  const file = valueOf(text, "bkv_process_rss_file_bytes");
  const rss = valueOf(text, "process_resident_memory_bytes");
  t.true(anon > 0, `anon ${anon}`);
  t.true(file > 0, `file ${file}`);
  const shmem = (procStatusKib("RssShmem") ?? 0) * 1024;
  t.true(Math.abs(anon + file + shmem - rss) < 0.2 * rss, `anon ${anon} + file ${file} + shmem ${shmem} vs rss ${rss}`);
});

test("procStatusKib reads one kB field and nothing else", (t) => {
  const status = "Name:\tnode\nVmRSS:\t  2048 kB\nRssAnon:\t  1024 kB\nRssFile:\t   512 kB\n";
  t.is(procStatusKib("RssAnon", status), 1024);
  t.is(procStatusKib("RssFile", status), 512);
  t.is(procStatusKib("Rss", status), null);
  t.is(procStatusKib("VmSwap", status), null);
});

test("the main thread's array buffers and the HSM pool's restarts and worker memory are exported", async (t) => {
  const metrics = new Metrics(() => null, { node: "1" });
  const held = Buffer.alloc(4 << 20, 1);
  const memory = { heapUsed: 3e6, heapTotal: 5e6, external: 7e5, arrayBuffers: 2e5 };
  metrics.watchHsm({ stats: { operations: 17, recycles: 2, lastRestartMs: 250 }, memory: () => Promise.resolve(memory) });
  const text = await metrics.registry.metrics();
  t.true(valueOf(text, "bkv_process_array_buffers_bytes") >= held.length);
  t.is(valueOf(text, "bkv_hsm_module_restarts"), 2);
  t.is(valueOf(text, "bkv_hsm_operations_since_restart"), 17);
  t.is(valueOf(text, "bkv_hsm_last_restart_seconds"), 0.25);
  t.is(valueOf(text, "bkv_hsm_worker_heap_used_bytes"), 3e6);
  t.is(valueOf(text, "bkv_hsm_worker_heap_total_bytes"), 5e6);
  t.is(valueOf(text, "bkv_hsm_worker_external_bytes"), 7e5);
});

test("logInMemory counts the Raft entries held and their bytes, and drops what a compaction dropped", (t) => {
  const s = new MemoryStorage();
  s.append(Array.from({ length: 10 }, (_, i) => ({ term: 1, index: i + 1, type: EntryType.Normal, data: new Uint8Array(100) })));
  t.deepEqual(logInMemory(s), { entries: 10, bytes: 1000 });
  s.createSnapshot(6, { voters: [1], learners: [] }, new Uint8Array(0));
  s.compact(6);
  t.deepEqual(logInMemory(s), { entries: 4, bytes: 400 });
  t.deepEqual(logInMemory(new MemoryStorage()), { entries: 0, bytes: 0 });
});

test("the peer transport's counters are exported as counters that follow the transport's stats", async (t) => {
  const metrics = new Metrics(() => null, { node: "1" });
  const stats = { ...newStats(), messagesSent: 10, writes: 4, messagesReceived: 9, messagesDropped: 1 };
  metrics.watchTransport(stats);
  let text = await metrics.registry.metrics();
  t.regex(text, /^# TYPE bkv_peer_messages_sent_total counter$/m);
  t.is(valueOf(text, "bkv_peer_messages_sent_total"), 10);
  t.is(valueOf(text, "bkv_peer_writes_total"), 4);
  t.is(valueOf(text, "bkv_peer_messages_received_total"), 9);
  t.is(valueOf(text, "bkv_peer_messages_dropped_total"), 1);
  stats.messagesSent = 25;
  text = await metrics.registry.metrics();
  t.is(valueOf(text, "bkv_peer_messages_sent_total"), 25, "a second scrape shows the total, not the difference");
});

test("the metrics port answers 503 \"starting\" on every path until the start ended, then /healthz, /readyz and /metrics", async (t) => {
  let started = false;
  let notReady: string | null = "no leader";
  const server = await serveMetrics("127.0.0.1:0", { metrics: new Metrics(() => null, { node: "1" }), notReady: () => notReady, started: () => started, notice: "" });
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const get = async (path: string) => {
    const res = await fetch(`${base}${path}`);
    return `${res.status} ${(await res.text()).split("\n")[0]}`;
  };
  for (const path of ["/healthz", "/readyz", "/metrics", "/nope"]) t.is(await get(path), "503 starting", path);
  started = true;
  t.is(await get("/healthz"), "200 ok");
  t.is(await get("/readyz"), "503 not ready: no leader");
  notReady = null;
  t.is(await get("/readyz"), "200 ready");
  t.regex(await get("/metrics"), /^200 /);
  t.is(await get("/nope"), "404 not found");
});
