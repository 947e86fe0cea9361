// The npm package as a user gets it: `npm pack` (its prepack step builds
// dist/ with tsc) installed from the tarball into a new project. The SDK
// imports as "bkv" with its types, the installed `bkv` answers --version and
// --help, and a cluster of the installed, compiled bkv-node (HSM worker
// included) serves a key registered through the installed SDK and recovered
// through the installed CLI.
import test from "ava";
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { descriptorToJson } from "../../client/sdk/index.js";
import { LocalCluster, reportLogsOnFailure } from "../../testkit/cluster.js";
import { mintToken } from "../../client/cli/dev-issuer.js";
import { tempDir } from "../temp.js";

reportLogsOnFailure(test);

const ROOT = resolve(import.meta.dirname, "../..");
const run = promisify(execFile);
const MINUTES = 60_000;
// Under `npm test` the environment holds the outer npm's settings (npm_config_local_prefix: this repo); the inner npm must not see them.
const npmEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith("npm_")));
const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;

const CONSUMER_TS = `import { VaultClient, type ClusterDescriptor, loadDescriptor } from "bkv";
import { encryptFile } from "bkv/backup";
export const open = (file: string): VaultClient => new VaultClient(loadDescriptor(file) satisfies ClusterDescriptor);
export const seal: (key: Uint8Array, from: string, to: string) => Promise<unknown> = encryptFile;
// @ts-expect-error the SDK is typed: a VaultClient needs a descriptor
new VaultClient("not a descriptor");
`;

const CONSUMER_MJS = `import { VaultClient, formatKey, loadDescriptor } from "bkv";
const [descriptorFile, user, password, token] = process.argv.slice(2);
const client = new VaultClient(loadDescriptor(descriptorFile), { scrypt: { N: 1024, r: 8, p: 1 }, token });
const key = await client.register(user, password);
client.close();
process.stdout.write(formatKey(key));
`;

/** Packs the repo into `dir` and installs the tarball into a new project there; returns the project's path. */
async function packAndInstall(dir: string): Promise<string> {
  const packed = await run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: ROOT, env: npmEnv, timeout: 8 * MINUTES, maxBuffer: 1 << 24 });
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as { filename: string; files: { path: string }[] }[];
  if (info === undefined) throw new Error("npm pack reported no package");
  const paths = info.files.map((f) => f.path);
  const stray = paths.filter((p) => (p.endsWith(".ts") && !p.endsWith(".d.ts")) || p.startsWith("test/") || p.startsWith("node_modules/"));
  if (stray.length > 0) throw new Error(`the package holds sources or tests: ${stray.slice(0, 5).join(", ")}`);
  const project = join(dir, "consumer");
  await run("mkdir", ["-p", project]);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "bkv-consumer", private: true, type: "module", allowScripts: { pkcs11js: true } }));
  // Tarballs come from the npm cache that `npm ci` filled; package metadata from the registry when not cached.
  await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", join(dir, info.filename)], { cwd: project, env: npmEnv, timeout: 8 * MINUTES });
  return project;
}

test("the packed package installs in a new project: typed SDK import, fast CLI, compiled bkv-node serving a recovery", async (t) => {
  t.timeout(25 * MINUTES);
  const dir = tempDir(t, "bkv-pack-");
  const project = await packAndInstall(dir);
  const bin = (name: string) => join(project, "node_modules/.bin", name);

  t.is((await run(bin("bkv"), ["--version"])).stdout, `bkv ${version}\n`);
  t.regex((await run(bin("bkv"), ["--help"])).stdout, /^Usage: bkv COMMAND/m);
  t.regex((await run(bin("bkv-node"), ["--help"])).stdout, /^Usage: bkv-node --config FILE/m);

  writeFileSync(join(project, "consumer.ts"), CONSUMER_TS);
  writeFileSync(join(project, "tsconfig.json"), JSON.stringify({
    compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2022", strict: true, noEmit: true, types: ["node"], typeRoots: [join(ROOT, "node_modules/@types")] },
    files: ["consumer.ts"],
  }));
  await run(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", project], { timeout: 3 * MINUTES }).catch((err: { stdout: string }) => {
    t.fail(`the consumer does not type-check against the installed package:\n${err.stdout}`);
  });

  const cluster = await LocalCluster.start({ nodeEntry: join(project, "node_modules/bkv/dist/node/server/main.js") });
  t.teardown(() => cluster.close());
  const descriptorFile = join(project, "cluster.json");
  writeFileSync(descriptorFile, JSON.stringify(descriptorToJson(await cluster.descriptor())));
  writeFileSync(join(project, "register.mjs"), CONSUMER_MJS);
  const token = await mintToken(cluster.issuer, { subject: "ann" });
  const key = (await run(process.execPath, ["register.mjs", descriptorFile, "ann", "pw-of-ann", token], { cwd: project, timeout: 3 * MINUTES })).stdout;
  // The installed CLI mints its own tokens with the cluster's development issuer key.
  const cliEnv = { ...process.env, BKV_DEV_ISSUER_KEY: join(cluster.dir, "dev-issuer.key.json") };
  t.regex(key, /^([0-9a-f]{4} ){15}[0-9a-f]{4}$/);

  const recover = run(bin("bkv"), ["recover", "--user", "ann", "--password-stdin", "--cluster", descriptorFile], { timeout: 3 * MINUTES, env: cliEnv });
  recover.child.stdin?.end("pw-of-ann\n");
  t.is((await recover).stdout.trim(), key, "the installed CLI recovers the key the installed SDK registered");
  const wrong = run(bin("bkv"), ["recover", "--user", "ann", "--password-stdin", "--cluster", descriptorFile], { timeout: 3 * MINUTES, env: cliEnv });
  wrong.child.stdin?.end("not-the-password\n");
  t.is(((await wrong.catch((err: { code: number }) => err)) as { code: number }).code, 2, "a wrong password exits 2");
});
