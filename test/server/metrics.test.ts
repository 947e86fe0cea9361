// The node's memory gauges: RssAnon and RssFile of /proc/self/status, so that
// the store's mapped file pages (page cache) are told apart from what the
// node holds itself (issue 12).
import test from "ava";
import { Metrics, procStatusKib } from "../../node/server/metrics.js";

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
