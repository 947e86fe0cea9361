// The open-file limit check (node/server/open-files.ts): the soft limit read
// from a /proc/PID/limits text, and the shortfall against the ports' caps.
import test from "ava";
import { OWN_DESCRIPTORS, openFilesShortfall, readOpenFilesLimit, softOpenFilesLimit } from "../../node/server/open-files.js";

const LIMITS = (soft: string, hard: string) => [
  "Limit                     Soft Limit           Hard Limit           Units     ",
  "Max processes             95473                95473                processes ",
  `Max open files            ${soft.padEnd(20)} ${hard.padEnd(20)} files     `,
  "Max locked memory         8388608              8388608              bytes     ",
].join("\n");

test("the soft limit is read from the 'Max open files' line; unlimited or absent is null", (t) => {
  t.is(softOpenFilesLimit(LIMITS("1024", "4096")), 1024);
  t.is(softOpenFilesLimit(LIMITS("unlimited", "unlimited")), null);
  t.is(softOpenFilesLimit("Limit Soft Hard\nMax processes 1 1 processes"), null);
  t.is(readOpenFilesLimit(() => { throw new Error("ENOENT"); }), null, "no /proc: nothing checked");
  t.is(readOpenFilesLimit(() => LIMITS("65536", "65536")), 65536);
});

test("a shortfall is reported when the limit is below the connections plus the node's own descriptors", (t) => {
  const connections = 512 + 64 + 128;
  t.deepEqual(openFilesShortfall(512, connections), { limit: 512, needed: connections + OWN_DESCRIPTORS });
  t.is(openFilesShortfall(1024, connections), null, "the common default of 1024 holds the default caps");
  t.is(openFilesShortfall(connections + OWN_DESCRIPTORS, connections), null, "exactly enough");
  t.is(openFilesShortfall(null, connections), null, "unlimited or unknown");
});

test("this machine's limit is read (Linux)", (t) => {
  if (process.platform !== "linux") return t.pass();
  const limit = readOpenFilesLimit();
  t.true(limit === null || limit > 0);
});
