import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { prepareOutDir } from "../../chaos/runner.js";
import { tempDir } from "../temp.js";

test("a replay of a seed keeps the previous run's directory (it was deleted with its evidence) and starts empty", (t) => {
  const out = join(tempDir(t, "bkv-outdir-"), "seed-1");
  mkdirSync(out);
  writeFileSync(join(out, "history.jsonl"), "first run\n");
  const kept = prepareOutDir(out);
  t.truthy(kept);
  t.regex(kept!, /\/seed-1\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$/);
  t.is(readFileSync(join(kept!, "history.jsonl"), "utf8"), "first run\n");
  t.deepEqual(readdirSync(out), []);
});

test("a fresh or empty run directory is simply made", (t) => {
  const out = join(tempDir(t, "bkv-outdir-"), "seed-2");
  t.is(prepareOutDir(out), undefined);
  t.true(existsSync(out));
  t.is(prepareOutDir(out), undefined, "an empty directory holds no evidence");
});
