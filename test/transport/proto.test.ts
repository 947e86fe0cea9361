// The protocol files themselves: `buf lint` passes and proto/gen is exactly
// what `buf generate` makes from proto/bkv/v1 (nobody hand-edited it, nobody
// forgot to regenerate).

import test from "ava";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { tempDir } from "../temp.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "node_modules/.bin");
const env = { ...process.env, PATH: `${BIN}:${process.env.PATH ?? ""}` };

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p, "utf8"));
    }
  };
  walk(dir);
  return out;
}

test("buf lint passes on proto/bkv/v1", async (t) => {
  const { stdout } = await run(join(BIN, "buf"), ["lint"], { cwd: ROOT, env });
  t.is(stdout.trim(), "");
});

test("proto/gen matches a fresh buf generate", async (t) => {
  const out = tempDir(t, "bkv-gen-");
  await run(join(BIN, "buf"), ["generate", "-o", out], { cwd: ROOT, env });
  const fresh = files(join(out, "proto/gen"));
  const committed = files(join(ROOT, "proto/gen"));
  t.deepEqual([...committed.keys()].sort(), [...fresh.keys()].sort());
  for (const [name, text] of fresh) t.is(committed.get(name), text, `${name} is stale: run npm run proto:gen`);
});
