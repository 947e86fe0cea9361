// throttledWarn (node/server/log-throttle.ts): one line per kind and window,
// the next line written counts the ones held back; kinds do not share a window.
import test from "ava";
import type { Logger } from "../../node/server/log.js";
import { throttledWarn } from "../../node/server/log-throttle.js";

function recorder(): { log: Logger; lines: Array<{ msg: string; fields: Record<string, unknown> }> } {
  const lines: Array<{ msg: string; fields: Record<string, unknown> }> = [];
  const none = () => {};
  return { lines, log: { debug: none, info: none, error: none, warn: (msg, fields = {}) => lines.push({ msg, fields }) } };
}

test("a kind is written once per window; the next line says how many were held back", (t) => {
  let now = 0;
  const { log, lines } = recorder();
  const warn = throttledWarn(log, 10_000, () => now);
  for (let i = 0; i < 50; i++) warn("refused", "/a/B", { i });
  t.deepEqual(lines, [{ msg: "refused", fields: { i: 0 } }]);
  now = 9_999;
  warn("refused", "/a/B", { i: 50 });
  t.is(lines.length, 1, "still inside the window");
  now = 10_000;
  warn("refused", "/a/B", { i: 51 });
  t.deepEqual(lines[1], { msg: "refused", fields: { i: 51, suppressed: 50 } });
  now = 30_000;
  warn("refused", "/a/B", { i: 52 });
  t.deepEqual(lines[2], { msg: "refused", fields: { i: 52 } }, "nothing held back since the last line");
});

test("kinds (message, key) have their own windows", (t) => {
  const { log, lines } = recorder();
  const warn = throttledWarn(log, 10_000, () => 0);
  warn("refused", "/a/B", {});
  warn("refused", "/a/C", {});
  warn("ended early", "/a/B", {});
  warn("refused", "/a/B", {});
  t.deepEqual(lines.map((l) => l.msg), ["refused", "refused", "ended early"]);
});
