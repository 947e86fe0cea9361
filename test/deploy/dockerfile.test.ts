// deploy/Dockerfile read statically (no Docker engine here): the runtime
// image holds every source file bkv-node and the bkv CLI import, the build
// context filter lets them through, and the image runs non-root with the
// documented entrypoint.
import test from "ava";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";

const dockerfile = readFileSync("deploy/Dockerfile", "utf8");
const dockerignore = readFileSync("deploy/Dockerfile.dockerignore", "utf8");
const ENTRIES = ["node/server/main.ts", "node/hsm/worker.ts", "client/cli/main.ts"];

/** Every repo file reachable by relative imports from ENTRIES (".js" specifiers map to ".ts" sources). */
function importClosure(entries: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...entries];
  while (todo.length > 0) {
    const file = todo.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const src = readFileSync(file, "utf8");
    for (const m of src.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
      const target = normalize(join(dirname(file), (m[1] as string).replace(/\.js$/, ".ts")));
      if (!existsSync(target)) throw new Error(`${file} imports ${m[1]}, which does not exist`);
      todo.push(target);
    }
  }
  return seen;
}

/** Sources of the runtime stage's `COPY <src> <dest>` lines (not --from=build). */
function runtimeCopies(): string[] {
  const runtime = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
  return [...runtime.matchAll(/^COPY\s+(?!--from)(.+)$/gm)].flatMap((m) => (m[1] as string).trim().split(/\s+/).slice(0, -1));
}

/** The re-included paths of the context filter ("!path" lines after "**"). */
function contextIncludes(): string[] {
  const lines = dockerignore.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  if (lines[0] !== "**") throw new Error("the context filter must start by excluding everything");
  return lines.filter((l) => l.startsWith("!")).map((l) => l.slice(1).replace(/\/$/, ""));
}

const covered = (file: string, dirs: readonly string[]) => dirs.some((d) => file === d || file.startsWith(`${d}/`));

test("every file bkv-node, its HSM worker and the CLI import is copied into the image and passes the context filter", (t) => {
  const files = importClosure(ENTRIES);
  t.true(files.size > 20, `closure of ${files.size} files`);
  const copies = runtimeCopies();
  const includes = contextIncludes();
  for (const file of files) {
    t.true(covered(file, copies), `${file} is not copied into the runtime image`);
    t.true(covered(file, includes), `${file} is excluded from the build context`);
  }
  for (const script of ["deploy/softhsm/init-token.sh", "tsconfig.json", "package-lock.json"]) {
    t.true(covered(script, copies) && covered(script, includes), script);
  }
});

test("importClosure follows imports and reports a missing module", (t) => {
  const files = importClosure(["node/server/main.ts"]);
  t.true(files.has("node/server/config.ts"));
  t.true([...files].some((f) => f.startsWith("proto/")));
  t.throws(() => importClosure(["test/deploy/fixtures/bad-import.txt"]), { message: /does not exist/ });
});

test("the image: Node 20 on bookworm-slim, SoftHSM2, production dependencies, non-root, bkv-node entrypoint", (t) => {
  t.regex(dockerfile, /^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
  t.regex(dockerfile, /apt-get install -y --no-install-recommends softhsm2/);
  t.regex(dockerfile, /npm ci --omit=dev/);
  t.regex(dockerfile, /exec node --import tsx \/opt\/bkv\/node\/server\/main\.ts "\$@"/);
  t.regex(dockerfile, /^USER 10001:10001$/m);
  t.regex(dockerfile, /^ENTRYPOINT \["bkv-node"\]$/m);
  t.regex(dockerfile, /^CMD \["--config", "\/etc\/bkv\/config\.json"\]$/m);
  t.notRegex(dockerfile, /^USER\s+(root|0)\b/m);
});
