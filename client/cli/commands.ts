// The `bkv` commands: specs (flags, help) and what each one does.
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { rename, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ClusterDescriptor } from "../sdk/descriptor.js";
import type { ClusterStatus } from "../sdk/status.js";
import type { VaultClient } from "../sdk/vault-client.js";
import type { TokenProvider } from "../sdk/auth.js";
import type { ClientError as ClientErrorClass } from "../sdk/errors.js";
import { type CommandSpec, type Parsed, UsageError, intFlag, stringFlag } from "./args.js";
import { type CliIo, progressBar } from "./io.js";
import { EXIT } from "./exit.js";

/**
 * The SDK and the backup-file code, loaded by the commands that use them:
 * `bkv --help` and `bkv --version` start without gRPC, protobuf and curves.
 */
const sdk = () => import("../sdk/index.js");
const backupFiles = () => import("../backup/index.js");
const ioSteps = () => import("../sdk/io-step.js");

export interface Command extends CommandSpec {
  run(p: Parsed, io: CliIo): Promise<number>;
}

const NET = { timeout: "string", "token-file": "string" } as const;
const CLUSTER_HELP = `
Options of the commands that call the cluster (register, recover, verify-password,
change-password, delete, status; cluster fetch takes --token-file):
  --cluster FILE     cluster descriptor (default: $BKV_CLUSTER, else data/local/cluster.json)
  --timeout SECS     give up retrying after SECS seconds (default 30; a registration's
                     read-back too, default 10); one node's evaluation retries at most 5 s
  --token-file FILE  the bearer token (a JWT from your account service) for every call;
                     else $BKV_TOKEN; else, next to a local cluster's descriptor, tokens are
                     minted with its development issuer key (dev-issuer.key.json, or $BKV_DEV_ISSUER_KEY)
  -h, --help         this help`;

/**
 * Where the calls' tokens come from: --token-file, else $BKV_TOKEN, else a
 * development issuer key ($BKV_DEV_ISSUER_KEY, or dev-issuer.key.json next to
 * the descriptor) minting a short-lived token per call; else none.
 */
async function tokenProvider(p: Parsed, io: CliIo, descriptorFile: string | undefined, clusterId?: string): Promise<TokenProvider | undefined> {
  const file = stringFlag(p, "token-file");
  if (file !== undefined) {
    const { readText } = await ioSteps();
    return (await readText(file, `token file ${file}`)).trim();
  }
  if (io.env.BKV_TOKEN !== undefined && io.env.BKV_TOKEN !== "") return io.env.BKV_TOKEN.trim();
  const named = io.env.BKV_DEV_ISSUER_KEY || undefined;
  const devKey = named ?? (descriptorFile === undefined ? undefined : join(dirname(descriptorFile), "dev-issuer.key.json"));
  if (named !== undefined && !existsSync(named)) throw new (await sdk()).ClientError("IO", `BKV_DEV_ISSUER_KEY: cannot read ${named}: ENOENT`);
  if (devKey === undefined || !existsSync(devKey)) return undefined;
  const { devTokenProvider, loadDevIssuer } = await import("./dev-issuer.js");
  return devTokenProvider(await loadDevIssuer(devKey), clusterId);
}

/** Loads the descriptor (before any prompt), reads the secrets, runs `body`, closes the client. */
async function withClient<T>(p: Parsed, io: CliIo, prompts: readonly string[], body: (c: VaultClient, secrets: string[]) => Promise<T>): Promise<T> {
  const { VaultClient, descriptorPath, loadDescriptor, printable } = await sdk();
  const file = descriptorPath(stringFlag(p, "cluster"), io.env);
  const descriptor = loadDescriptor(file);
  const timeout = intFlag(p, "timeout", 1, 3600);
  const token = await tokenProvider(p, io, file, descriptor.clusterId);
  const client = new VaultClient(descriptor, {
    ...(timeout === undefined ? {} : { retry: { deadlineMs: timeout * 1000 }, readBackTimeoutMs: timeout * 1000 }),
    ...(token === undefined ? {} : { token }),
    onWarning: (w) => io.stderr(`bkv: warning: ${printable(w.message)}\n`),
  });
  try {
    const secrets = prompts.length === 0 ? [] : await io.readSecrets(prompts);
    return await body(client, secrets);
  } finally {
    client.close();
  }
}

function needPasswordStdin(p: Parsed, name: string): void {
  if (p.flags.get("password-stdin") !== true) {
    throw new UsageError(`\`bkv ${name}\` reads the password from stdin: pass --password-stdin (passwords are never taken from argv)`);
  }
}

function user(p: Parsed): string {
  return stringFlag(p, "user") as string;
}

const keyGenerate: Command = {
  name: "key generate",
  summary: "print a new random 256-bit backup key",
  usage: "bkv key generate",
  flags: {},
  help: "Prints a new random 256-bit key as 64 hex digits in 16 groups of 4.",
  async run(_p, io) {
    const { formatKey, generateKey } = await sdk();
    io.stdout(`${formatKey(generateKey())}\n`);
    return 0;
  },
};

const register: Command = {
  name: "register",
  summary: "escrow a backup key under a password; prints the key",
  usage: "bkv register --user U --password-stdin [--key-stdin] [--guess-limit N] [--threshold T]",
  flags: { user: "string", "password-stdin": "boolean", "key-stdin": "boolean", "guess-limit": "string", threshold: "string", ...NET },
  required: ["user"],
  help: `Registers a record for U and prints its backup key. Stdin: line 1 the password;
with --key-stdin, line 2 the key to escrow (64 hex digits, grouped or not), else a new key is made.
--guess-limit N: wrong passwords allowed between two recoveries (1-255, default 10).
--threshold T: nodes needed to recover (default: the descriptor's threshold).
The command succeeds only once t+1 nodes serve the committed record's digest.`,
  async run(p, io) {
    needPasswordStdin(p, "register");
    const { formatKey, parseKey } = await sdk();
    const withKey = p.flags.get("key-stdin") === true;
    const guessLimit = intFlag(p, "guess-limit", 1, 255);
    const threshold = intFlag(p, "threshold", 1, 64);
    const prompts = withKey ? ["Password: ", "Backup key: "] : ["Password: "];
    const key = await withClient(p, io, prompts, (c, [password, keyText]) => {
      const backupKey = keyText === undefined ? undefined : parseKey(keyText);
      return c.register(user(p), password as string, {
        ...(backupKey ? { backupKey } : {}), ...(guessLimit ? { guessLimit } : {}), ...(threshold ? { threshold } : {}),
      });
    });
    io.stdout(`${formatKey(key)}\n`);
    return 0;
  },
};

const recover: Command = {
  name: "recover",
  summary: "recover a backup key with its password; prints the key",
  usage: "bkv recover --user U --password-stdin",
  flags: { user: "string", "password-stdin": "boolean", ...NET },
  required: ["user"],
  help: `Recovers U's backup key (stdin: the password) and prints it. Each try counts one
attempt; a wrong password prints the attempts remaining on stderr and exits 2.`,
  async run(p, io) {
    needPasswordStdin(p, "recover");
    const { formatKey } = await sdk();
    const key = await withClient(p, io, ["Password: "], (c, [password]) => c.recover(user(p), password as string));
    io.stdout(`${formatKey(key)}\n`);
    return 0;
  },
};

const verifyPassword: Command = {
  name: "verify-password",
  summary: "check a password (a full recovery that does not print the key)",
  usage: "bkv verify-password --user U --password-stdin",
  flags: { user: "string", "password-stdin": "boolean", ...NET },
  required: ["user"],
  help: `Checks U's password (stdin) with a full recovery and confirmation; prints "password ok"
and exits 0, or prints the attempts remaining and exits 2. It counts as an attempt until confirmed.`,
  async run(p, io) {
    needPasswordStdin(p, "verify-password");
    const r = await withClient(p, io, ["Password: "], (c, [password]) => c.checkPassword(user(p), password as string));
    if (!r.ok) {
      io.stderr(`bkv: wrong password: ${r.attemptsRemaining} attempts remaining\n`);
      return 2;
    }
    io.stdout("password ok\n");
    return 0;
  },
};

const changePassword: Command = {
  name: "change-password",
  summary: "re-register the same key under a new password",
  usage: "bkv change-password --user U --password-stdin",
  flags: { user: "string", "password-stdin": "boolean", ...NET },
  required: ["user"],
  help: "Stdin: line 1 the current password, line 2 the new one. The backup key does not change.",
  async run(p, io) {
    needPasswordStdin(p, "change-password");
    await withClient(p, io, ["Current password: ", "New password: "], (c, [oldPw, newPw]) => c.changePassword(user(p), oldPw as string, newPw as string));
    io.stdout("password changed\n");
    return 0;
  },
};

const deleteCmd: Command = {
  name: "delete",
  summary: "delete a record (needs its password)",
  usage: "bkv delete --user U --password-stdin",
  flags: { user: "string", "password-stdin": "boolean", ...NET },
  required: ["user"],
  help: "Recovers U's record with the password (stdin) to learn its reset key, then deletes it for ever.",
  async run(p, io) {
    needPasswordStdin(p, "delete");
    await withClient(p, io, ["Password: "], (c, [password]) => c.delete(user(p), password as string));
    io.stdout("deleted\n");
    return 0;
  },
};

const status: Command = {
  name: "status",
  summary: "per-node reachability (and a record's state with --user)",
  usage: "bkv status [--user U] [--json]",
  flags: { user: "string", json: "boolean", ...NET },
  help: `For each pinned node: reachable or not, round trip, whether its descriptor matches the
pinned one. With --user: each node's version, attempts remaining, lock and applied Raft index of
that record (no attempt is counted). Exit 0 when at least t nodes are reachable; else 12 when
a node refused the token (none, invalid or expired), else 5.`,
  async run(p, io) {
    const s = await withClient(p, io, [], (c) => c.status(stringFlag(p, "user")));
    io.stdout(p.flags.get("json") === true ? `${JSON.stringify(s, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2)}\n` : renderStatus(s));
    if (s.recoverable) return EXIT.OK;
    return s.nodes.some((n) => n.notAuthorized === true) ? EXIT.NOT_AUTHORIZED : EXIT.UNAVAILABLE;
  },
};

function renderStatus(s: ClusterStatus): string {
  const lines = [`cluster ${s.clusterId}: threshold ${s.threshold}, ${s.nodes.filter((n) => n.reachable).length}/${s.nodes.length} nodes reachable`];
  for (const n of s.nodes) {
    const head = `  node ${n.nodeId} ${n.address}: `;
    if (!n.reachable) {
      lines.push(`${head}${n.notAuthorized === true ? "NOT AUTHORIZED" : "UNREACHABLE"} (${n.error ?? "no answer"})`);
      continue;
    }
    const extra = n.unpinnedNodeIds?.length ? `, announces unpinned nodes ${n.unpinnedNodeIds.join(",")}` : "";
    lines.push(`${head}up ${n.latencyMs}ms, descriptor ${n.descriptorMatches ? "matches" : "DIFFERS"}${extra}`);
    const r = n.record;
    if (r === undefined) continue;
    lines.push(r.found
      ? `    record v${r.version}, ${r.attemptsRemaining} attempts remaining${r.locked ? ", LOCKED" : ""}, applied index ${r.appliedIndex}, digest ${r.digestPrefix}…`
      : `    record not found${r.error ? ` (${r.error})` : ""}`);
  }
  return `${lines.join("\n")}\n`;
}

function backup(mode: "encrypt" | "decrypt"): Command {
  return {
    name: `backup ${mode}`,
    summary: `${mode} a backup file with a backup key`,
    usage: `bkv backup ${mode} --key-file F --in X --out Y [--force]`,
    flags: { "key-file": "string", in: "string", out: "string", force: "boolean" },
    required: ["key-file", "in", "out"],
    help: `${mode === "encrypt" ? "Encrypts" : "Decrypts and authenticates"} X into Y with the key in file F (64 hex digits, grouped or not).
Y is written under a temporary name and renamed only when complete${mode === "decrypt" ? " and fully authenticated" : ""};
an existing Y is kept unless --force. A progress bar is drawn on a terminal for files over 8 MiB.`,
    async run(p, io) {
      const [{ parseKey }, { decryptFile, encryptFile }, { readText }] = await Promise.all([sdk(), backupFiles(), ioSteps()]);
      const keyFile = stringFlag(p, "key-file") as string;
      const text = await readText(keyFile, `key file ${keyFile}`);
      const key = parseKey(text);
      const run = mode === "encrypt" ? encryptFile : decryptFile;
      const onProgress = progressBar(io, mode === "encrypt" ? "encrypting" : "decrypting");
      await run(key, stringFlag(p, "in") as string, stringFlag(p, "out") as string, {
        overwrite: p.flags.get("force") === true, ...(onProgress ? { onProgress } : {}),
      });
      return 0;
    },
  };
}

const clusterFetch: Command = {
  name: "cluster fetch",
  summary: "fetch a cluster descriptor from a node (trust on first use)",
  usage: "bkv cluster fetch --address HOST:PORT [--ca FILE] --out FILE [--force] [--token-file FILE]",
  flags: { address: "string", ca: "string", out: "string", force: "boolean", "token-file": "string" },
  required: ["address", "out"],
  help: `Asks the node at HOST:PORT (TLS with the CA in --ca FILE, else plaintext) for the cluster
descriptor, checks every node's signature, writes it to --out FILE and prints each node's identity
key fingerprint. This is trust on first use: compare the fingerprints with the operators' before
pinning the file. An existing FILE is kept unless --force. The node needs a valid token of the
cluster (any user's): --token-file FILE, else $BKV_TOKEN, else a development issuer key mints one
($BKV_DEV_ISSUER_KEY, or dev-issuer.key.json beside the default descriptor, as \`npm start\` leaves it).`,
  async run(p, io) {
    const { ClientError, descriptorPath, descriptorToJson, fetchDescriptor, printable } = await sdk();
    const caFile = stringFlag(p, "ca");
    const ca = caFile === undefined ? undefined : await (await ioSteps()).readText(caFile, `CA file ${caFile}`);
    const out = stringFlag(p, "out") as string;
    if (p.flags.get("force") !== true && (await stat(out).then(() => true, () => false))) {
      throw new ClientError("IO", `${out} exists (pass --force to replace it)`);
    }
    // A local cluster's development issuer key lies beside the default descriptor.
    const token = await tokenProvider(p, io, descriptorPath(stringFlag(p, "cluster"), io.env));
    const d = await fetchDescriptor(stringFlag(p, "address") as string, { ...(ca === undefined ? {} : { tlsCa: ca }), ...(token === undefined ? {} : { token }) })
      .catch((err: unknown) => { throw ca === undefined ? withPlaintextHint(err, ClientError) : err; });
    const temp = `${out}.tmp-${randomBytes(6).toString("hex")}`;
    const written = writeFile(temp, `${JSON.stringify(descriptorToJson(d), null, 2)}\n`, { mode: 0o644 }).then(() => rename(temp, out));
    await written.catch((err: NodeJS.ErrnoException) => {
      throw new ClientError("IO", `cannot write ${out}: ${err.code ?? err.message}`);
    });
    io.stdout(describeDescriptor(d, printable));
    return 0;
  },
};

/**
 * Without --ca the fetch spoke plaintext, which a node's TLS client port
 * answers by closing the connection ("Failed to connect"): such an
 * UNAVAILABLE (not a refused or unknown address) says what to try.
 */
function withPlaintextHint(err: unknown, ClientError: typeof ClientErrorClass): unknown {
  if (!(err instanceof ClientError) || !/UNAVAILABLE/.test(err.message) || /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT/.test(err.message)) return err;
  err.message += " (without --ca this call spoke plaintext: if the node serves TLS, as it does unless configured without, pass --ca FILE with the cluster's CA)";
  return err;
}

/** The fetched descriptor in lines; its strings came from a node, so each passes through `printable`. */
function describeDescriptor(d: ClusterDescriptor, printable: (text: string) => string): string {
  const fp = (key: Uint8Array) => createHash("sha256").update(key).digest("hex").slice(0, 32).replace(/(.{4})(?!$)/g, "$1:");
  const nodes = d.nodes.map((n) => `  node ${n.nodeId} ${printable(n.address)} identity ${fp(n.identityPublicKey)}`);
  return `cluster ${printable(d.clusterId)}: threshold ${d.threshold}, ${d.nodes.length} nodes, ${d.tlsCa === undefined ? "PLAINTEXT" : "TLS"}\n${nodes.join("\n")}\n`;
}

export const COMMANDS: readonly Command[] = [
  keyGenerate, register, recover, verifyPassword, changePassword, deleteCmd, status, backup("encrypt"), backup("decrypt"), clusterFetch,
];

export { CLUSTER_HELP };
