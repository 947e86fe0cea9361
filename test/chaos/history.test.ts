import test from "ava";
import fs from "node:fs";
import path from "node:path";
import { HistoryFormatError, HistoryWriter, pairOperations, parseHistory, readHistory } from "../../chaos/history.js";
import { tempDir } from "../temp.js";

test("writer appends one JSON line per event and the reader reads them back", (t) => {
  const dir = tempDir(t, "bkv-hist-");
  const file = path.join(dir, "history.jsonl");
  let now = 0;
  const w = new HistoryWriter(file, () => now++);
  w.invoke(1, "register", "u1", { guessLimit: 3 });
  w.complete("ok", 1, "register", "u1", { version: 1 });
  w.nemesis("kill", "node-2");
  w.close();
  const lines = fs.readFileSync(file, "utf8").trim().split("\n");
  t.is(lines.length, 3);
  const back = readHistory(file);
  t.deepEqual(back, w.events);
  const ops = pairOperations(back);
  t.is(ops.length, 1);
  t.is(ops[0]!.outcome, "ok");
  t.is(ops[0]!.completeTime, 1);
});

test("an invocation never completed is an info operation with no completion time", (t) => {
  const ops = pairOperations(parseHistory('{"type":"invoke","process":1,"op":"begin","user":"u","time":5}\n'));
  t.is(ops[0]!.outcome, "info");
  t.is(ops[0]!.completeTime, Infinity);
});

test("malformed lines are refused with their line number", (t) => {
  t.throws(() => parseHistory("{}\nnot json"), { instanceOf: HistoryFormatError, message: /line 1/ });
  t.throws(() => parseHistory('{"type":"invoke","process":1,"op":"steal","user":"u","time":1}'), { message: /unknown op/ });
  const orphan = parseHistory('{"type":"ok","process":1,"op":"begin","user":"u","time":1}');
  t.throws(() => pairOperations(orphan), { message: /without an invocation/ });
  t.throws(() => pairOperations(parseHistory('{"type":"invoke","process":1,"op":"begin","user":"u","time":1}\n{"type":"invoke","process":1,"op":"begin","user":"u","time":2}')), { message: /invoked twice/ });
});
