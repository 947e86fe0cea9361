// deploy/Dockerfile read statically (the image itself is built and booted by
// hand: docs/kubernetes.md, "The image"): the build stage compiles every
// source file bkv-node, its HSM worker and the bkv CLI import, the build
// context filter lets them through, the runtime stage holds the compiled
// dist/ and production dependencies only, and runs non-root with the
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

const runtimeStage = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
const buildStage = dockerfile.slice(0, dockerfile.lastIndexOf("\nFROM "));

/** Sources of a stage's `COPY <src> <dest>` lines from the context (not --from=build). */
function contextCopies(stage: string): string[] {
  return [...stage.matchAll(/^COPY\s+(?!--from)(.+)$/gm)].flatMap((m) => (m[1] as string).trim().split(/\s+/).slice(0, -1));
}

/** The re-included paths of the context filter ("!path" lines after "**"). */
function contextIncludes(): string[] {
  const lines = dockerignore.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  if (lines[0] !== "**") throw new Error("the context filter must start by excluding everything");
  return lines.filter((l) => l.startsWith("!")).map((l) => l.slice(1).replace(/\/$/, ""));
}

const covered = (file: string, dirs: readonly string[]) => dirs.some((d) => file === d || file.startsWith(`${d}/`));

test("every file bkv-node, its HSM worker and the CLI import is compiled in the build stage and passes the context filter", (t) => {
  const files = importClosure(ENTRIES);
  t.true(files.size > 20, `closure of ${files.size} files`);
  const copies = contextCopies(buildStage);
  const includes = contextIncludes();
  const built = (JSON.parse(readFileSync("tsconfig.build.json", "utf8").replace(/^\s*\/\/.*$/gm, "")) as { include: string[] }).include;
  for (const file of files) {
    t.true(covered(file, copies), `${file} is not copied into the build stage`);
    t.true(covered(file, includes), `${file} is excluded from the build context`);
    t.true(covered(file, built), `${file} is not compiled by tsconfig.build.json`);
  }
  for (const file of ["tsconfig.json", "tsconfig.build.json", "package-lock.json"]) t.true(covered(file, copies) && covered(file, includes), file);
  const runtime = contextCopies(runtimeStage);
  for (const file of ["deploy/softhsm/init-token.sh", "package.json"]) t.true(covered(file, runtime) && covered(file, includes), file);
  t.false(runtime.some((f) => ["node", "client", "proto"].includes(f)), "the runtime image holds no TypeScript sources");
});

test("importClosure follows imports and reports a missing module", (t) => {
  const files = importClosure(["node/server/main.ts"]);
  t.true(files.has("node/server/config.ts"));
  t.true([...files].some((f) => f.startsWith("proto/")));
  t.throws(() => importClosure(["test/deploy/fixtures/bad-import.txt"]), { message: /does not exist/ });
});

test("the image: Node 20 on bookworm-slim, SoftHSM2, compiled dist/ and production dependencies, non-root, bkv-node entrypoint", (t) => {
  t.regex(dockerfile, /^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
  t.regex(runtimeStage, /apt-get install -y --no-install-recommends softhsm2/);
  t.regex(buildStage, /RUN npm run -s build \\\n && npm prune --omit=dev/);
  t.regex(runtimeStage, /^COPY --from=build \/build\/dist \.\/dist$/m);
  t.regex(runtimeStage, /^COPY --from=build \/build\/node_modules \.\/node_modules$/m);
  t.regex(runtimeStage, /ln -s \/opt\/bkv\/dist\/node\/server\/main\.js \/usr\/local\/bin\/bkv-node/);
  t.regex(runtimeStage, /ln -s \/opt\/bkv\/dist\/client\/cli\/main\.js \/usr\/local\/bin\/bkv\b/);
  t.notRegex(runtimeStage, /tsx/, "the runtime image runs compiled JS, not tsx");
  t.regex(dockerfile, /^USER 10001:10001$/m);
  t.regex(dockerfile, /^ENTRYPOINT \["node", "--heap-growing-percent=300", "\/opt\/bkv\/dist\/node\/server\/main\.js"\]$/m);
  t.regex(dockerfile, /^CMD \["--config", "\/etc\/bkv\/config\.json"\]$/m);
  t.notRegex(dockerfile, /^USER\s+(root|0)\b/m);
});
