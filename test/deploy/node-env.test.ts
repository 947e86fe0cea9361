// The environment the test and benchmark clusters give their bkv-node
// processes (chaos/node-env.ts): the container image's malloc and heap settings
// unless the caller chose one, no PIN, and one node's own extra variables.
import test from "ava";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { NODE_V8_FLAGS, nodeEnv, parseAssignments } from "../../chaos/node-env.js";

test("a node runs with two malloc arenas, as in the container image, unless the caller set MALLOC_ARENA_MAX", (t) => {
  t.is(nodeEnv(1, { PATH: "/bin" }).MALLOC_ARENA_MAX, "2");
  t.is(nodeEnv(1, { MALLOC_ARENA_MAX: "8" }).MALLOC_ARENA_MAX, "8");
  t.regex(readFileSync("deploy/Dockerfile", "utf8"), /^ENV MALLOC_ARENA_MAX=2$/m);
  t.regex(readFileSync("deploy/local/start.sh", "utf8"), /MALLOC_ARENA_MAX="\$\{MALLOC_ARENA_MAX:-2\}" NODE_OPTIONS=".*" node [^"]*--import tsx "\$root\/node\/server\/main.ts"/);
});

test("a node's V8 heap is limited as in the container image, unless the caller's NODE_OPTIONS names a limit; its other options stay", (t) => {
  t.is(nodeEnv(1, { PATH: "/bin" }).NODE_OPTIONS, "--max-old-space-size=256");
  t.is(nodeEnv(1, { NODE_OPTIONS: "--trace-gc" }).NODE_OPTIONS, "--trace-gc --max-old-space-size=256");
  t.is(nodeEnv(1, { NODE_OPTIONS: "--max_old_space_size=96" }).NODE_OPTIONS, "--max_old_space_size=96");
  t.regex(readFileSync("deploy/Dockerfile", "utf8"), /^ENV NODE_OPTIONS=--max-old-space-size=256$/m);
  t.regex(readFileSync("deploy/local/start.sh", "utf8"), /NODE_OPTIONS="\$\{NODE_OPTIONS:---max-old-space-size=256\}" node --heap-growing-percent=300 --import tsx/);
});

test("a node runs with the container image's V8 flags on its command line (flags Node refuses in NODE_OPTIONS)", (t) => {
  t.deepEqual(NODE_V8_FLAGS, ["--heap-growing-percent=300"]);
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync("deploy/Dockerfile", "utf8"))?.[1];
  t.deepEqual((JSON.parse(entry ?? "[]") as string[]).slice(1, -1), [...NODE_V8_FLAGS]);
  t.regex(readFileSync("deploy/local/start.sh", "utf8"), new RegExp(`node ${NODE_V8_FLAGS.join(" ")} --import tsx`));
  t.is(spawnSync(process.execPath, [...NODE_V8_FLAGS, "-e", "0"]).status, 0, "Node knows the flags");
  const refused = spawnSync(process.execPath, ["-e", "0"], { env: { ...process.env, NODE_OPTIONS: NODE_V8_FLAGS.join(" ") }, encoding: "utf8" });
  t.regex(refused.stderr, /is not allowed in NODE_OPTIONS/, "if Node accepted them in NODE_OPTIONS, they would belong in nodeEnv");
});

test("a node's environment keeps the caller's but never BKV_HSM_PIN", (t) => {
  const env = nodeEnv(2, { PATH: "/bin", BKV_HSM_PIN: "1234", BKV_LOG_LEVEL: "debug" });
  t.is(env.PATH, "/bin");
  t.is(env.BKV_LOG_LEVEL, "debug");
  t.false("BKV_HSM_PIN" in env);
});

test("BKV_E2E_NODE_ENV_<id> adds variables to that node alone", (t) => {
  const base = { BKV_E2E_NODE_ENV_3: "LD_PRELOAD=/usr/lib/x.so  DUMP_OUT=/tmp/a=b MALLOC_ARENA_MAX=4" };
  const three = nodeEnv(3, base);
  t.is(three.LD_PRELOAD, "/usr/lib/x.so");
  t.is(three.DUMP_OUT, "/tmp/a=b");
  t.is(three.MALLOC_ARENA_MAX, "4");
  const one = nodeEnv(1, base);
  t.false("LD_PRELOAD" in one);
  t.is(one.MALLOC_ARENA_MAX, "2");
});

test("a word that is not NAME=value is refused with its text", (t) => {
  t.deepEqual(parseAssignments(""), {});
  t.throws(() => parseAssignments("A=1 oops"), { message: 'not NAME=value: "oops"' });
  t.throws(() => parseAssignments("=1"), { message: 'not NAME=value: "=1"' });
});
