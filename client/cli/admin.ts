// `bkv admin ...`: the operator's commands over the nodes' admin ports
// (docs/operations.md). mTLS with an operator certificate
// (deploy/certs/make-certs.sh OUTDIR operator); calls that change the cluster
// go to the leader, found and followed by client/admin/client.ts. Every
// command prints a table, or JSON with --json.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { type CommandSpec, type FlagKind, type Parsed, UsageError, intFlag, parseFlags, stringFlag } from "./args.js";
import type { CliIo } from "./io.js";
import { EXIT } from "./exit.js";
import { ClientError, NotAuthorizedError } from "../sdk/errors.js";
import { readText } from "../sdk/io-step.js";
import type { AdminClient, AdminClientOptions } from "../admin/client.js";
import { type AdminContext, digestsView, membersView, saveSnapshot, sharedSharesView, statusView } from "./admin-views.js";

interface AdminCommand extends CommandSpec {
  /** Names of the positional arguments, in order; a trailing "?" marks an optional one. */
  readonly positionals: readonly string[];
  /** The whole command's budget without --timeout, seconds (default DEFAULT_TIMEOUT_S). */
  readonly defaultTimeoutS?: number;
  run(ctx: AdminContext): Promise<number>;
}

/** A command's budget without --timeout: no call runs past it, nothing is retried after it. */
const DEFAULT_TIMEOUT_S = 30;

export const ADMIN_FLAGS: Readonly<Record<string, FlagKind>> = {
  endpoints: "string", certs: "string", "tls-ca": "string", "tls-cert": "string", "tls-key": "string", json: "boolean", timeout: "string",
};

const ADMIN_HELP = `
Connection (every subcommand):
  --endpoints A,B  admin addresses host:port (default $BKV_ADMIN_ENDPOINTS); one is enough
                   when the nodes' configs name each other's adminAddress
  --certs DIR      DIR/ca.crt, DIR/operator.crt, DIR/operator.key (default $BKV_ADMIN_CERTS)
                   Without either, the local cluster's: admin.json next to the client
                   descriptor ($BKV_CLUSTER, else data/local/cluster.json), as \`npm start\` writes it
  --tls-ca FILE, --tls-cert FILE, --tls-key FILE   override one of those files
  --timeout SECS   the command's budget: no call runs past it, nothing is retried after it (default 30)
  --json           print JSON instead of a table
  -h, --help       this help`;

const requestIdFlag = { "request-id": "string" } as const;

const COMMANDS: readonly AdminCommand[] = [
  {
    name: "status", summary: "every member: role, term, indexes, lag, health, HSM", usage: "bkv admin status", positionals: [], flags: {},
    help: "Asks the leader for the members, then each member's admin port for its own view. LAG is the leader's\ncommit index minus the member's applied index (or its match index when its admin port does not answer).\nThe last line says whether the leader's state registers bound shares only (bkv admin require-bound-shares).\nWithout a leader: each reachable node's own view, exit 5; no admin port answering: each address and why, exit 5.",
    run: statusView,
  },
  {
    name: "members", summary: "the members as the leader sees them", usage: "bkv admin members", positionals: [], flags: {},
    help: "Voters and learners with their peer and admin addresses, replication progress and reachability.",
    run: membersView,
  },
  {
    name: "add-learner", summary: "add a new node as a non-voting learner", usage: "bkv admin add-learner ID PEER_ADDRESS [--request-id HEX]",
    positionals: ["ID", "PEER_ADDRESS"], flags: requestIdFlag,
    help: "Adds node ID (new, never used) reached at PEER_ADDRESS (host:port of its peer port). Start the node with\njoin: true first. A retry with the same --request-id answers the first outcome; when node ID is already a\nmember at PEER_ADDRESS, nothing is proposed and the command says so (exit 0).",
    async run(ctx) {
      const nodeId = nodeIdArg(ctx.args[0]);
      const { response } = await ctx.client.onLeader("addLearner", { requestId: requestId(ctx.parsed), nodeId, peerAddress: ctx.args[1] as string });
      const done = response.alreadyInEffect ? `node ${nodeId} is already a member at ${ctx.args[1] as string}: nothing to do` : `node ${nodeId} added as a learner (configuration change at index ${response.index})`;
      ctx.print(`${done}\n`, { nodeId: Number(nodeId), index: Number(response.index), alreadyInEffect: response.alreadyInEffect });
      return EXIT.OK;
    },
  },
  {
    name: "promote", summary: "make a caught-up learner a voter", usage: "bkv admin promote ID [--request-id HEX]", positionals: ["ID"], flags: requestIdFlag,
    help: "Refused (FAILED_PRECONDITION) until the learner is reachable and within the leader's promoteMaxLag entries.\nA voter already: nothing is proposed, exit 0.",
    async run(ctx) {
      const nodeId = nodeIdArg(ctx.args[0]);
      const { response } = await ctx.client.onLeader("promoteLearner", { requestId: requestId(ctx.parsed), nodeId });
      const done = response.alreadyInEffect ? `node ${nodeId} is already a voter: nothing to do` : `node ${nodeId} promoted to voter (index ${response.index})`;
      ctx.print(`${done}\n`, { nodeId: Number(nodeId), index: Number(response.index), alreadyInEffect: response.alreadyInEffect });
      return EXIT.OK;
    },
  },
  {
    name: "remove", summary: "remove a voter or learner (its id is never reused)", usage: "bkv admin remove ID [--force] [--request-id HEX]",
    positionals: ["ID"], flags: { ...requestIdFlag, force: "boolean" },
    help: "Refused when the voters left would not include a reachable quorum, unless --force. A node that was a member\nand is one no longer: nothing is proposed, exit 0.",
    async run(ctx) {
      const nodeId = nodeIdArg(ctx.args[0]);
      const force = ctx.parsed.flags.get("force") === true;
      const { response } = await ctx.client.onLeader("removeNode", { requestId: requestId(ctx.parsed), nodeId, force });
      const done = response.alreadyInEffect ? `node ${nodeId} is no longer a member: nothing to do` : `node ${nodeId} removed (index ${response.index})`;
      ctx.print(`${done}\n`, { nodeId: Number(nodeId), index: Number(response.index), alreadyInEffect: response.alreadyInEffect });
      return EXIT.OK;
    },
  },
  {
    name: "transfer-leader", summary: "hand leadership to another voter", usage: "bkv admin transfer-leader [ID]", positionals: ["ID?"], flags: {},
    help: "Without ID the leader picks the most up-to-date voter. Exit 5 when another voter than ID ends up leading.",
    async run(ctx) {
      const nodeId = ctx.args[0] === undefined ? 0n : nodeIdArg(ctx.args[0]);
      const { response } = await ctx.client.onLeader("transferLeadership", { nodeId });
      ctx.print(`node ${response.leaderId} leads (term ${response.term})\n`, { leaderId: Number(response.leaderId), term: Number(response.term) });
      return nodeId === 0n || response.leaderId === nodeId ? EXIT.OK : EXIT.UNAVAILABLE;
    },
  },
  {
    name: "snapshot save", summary: "snapshot the leader and stream it to FILE", usage: "bkv admin snapshot save FILE", positionals: ["FILE"], flags: {},
    help: "Takes a snapshot on the leader, streams it to FILE (written to FILE.partial, synced, renamed), and prints\nits index, size and SHA-256. The file holds the vault state: shares stay wrapped to each node's HSM.",
    run: saveSnapshot,
  },
  {
    name: "issuer-keys rotate", summary: "commit a client-token issuer's new key set, signed by a current key",
    usage: "bkv admin issuer-keys rotate --file SIGNED_JWKS [--request-id HEX]", positionals: [], flags: { ...requestIdFlag, file: "string" },
    help: "SIGNED_JWKS holds a compact JWS made by the issuer (the app's account service) with a key of its CURRENT\nset, over {\"iss\", \"aud\": the cluster id, \"iat\", \"keys\": [public JWKs]}. Every node verifies it on apply\nand refuses a set not newer than the current one. Add the new key to the nodes' JWKS files too.",
    async run(ctx) {
      const file = stringFlag(ctx.parsed, "file");
      if (file === undefined) throw new UsageError("--file SIGNED_JWKS is required");
      const signedKeySet = (await readText(file)).trim();
      await ctx.client.onLeader("rotateIssuerKeys", { requestId: requestId(ctx.parsed), signedKeySet });
      ctx.print("issuer keys rotated\n", { rotated: true });
      return EXIT.OK;
    },
  },
  {
    name: "require-bound-shares", summary: "register bound shares only from now on (after an upgrade; irreversible)",
    usage: "bkv admin require-bound-shares [--request-id HEX]", positionals: [], flags: requestIdFlag,
    help: "For a cluster bootstrapped by a release before bound shares: from this entry on, every node refuses a\nregistration with an unbound share (wrap blob v1), INVALID_ARGUMENT \"upgrade the client\". Upgrade every\nnode and every client first. Irreversible; a new cluster requires bound shares from its bootstrap\n(then this only reports so). `bkv admin status` shows the setting.",
    async run(ctx) {
      const { response } = await ctx.client.onLeader("requireBoundShares", { requestId: requestId(ctx.parsed) });
      const was = response.alreadyRequired ? " (was already so)" : " from now on";
      ctx.print(`registrations take bound shares only${was}\n`, { boundSharesOnly: true, alreadyRequired: response.alreadyRequired });
      return EXIT.OK;
    },
  },
  {
    name: "shared-shares", summary: "find shares held by several users' records (copies made before bound shares)",
    usage: "bkv admin shared-shares", positionals: [], flags: {}, defaultTimeoutS: 600,
    help: "The leader scans its state (seconds per million records; --timeout defaults to 600 here) for any node's\nshare held by the records of two or more users. Only a cluster that took unbound shares (a release before\nbound shares, until require-bound-shares) can hold one: a copy of a victim's shares under another user,\nwhere the victim's password can be guessed. Exit 0 when there is none, 6 when there is.",
    run: sharedSharesView,
  },
  {
    name: "digests", summary: "every node's state digest at one applied index", usage: "bkv admin digests", positionals: [], flags: {},
    help: "Compares the state digests every member recorded at the latest applied index they all recorded.\nExit 0 when they agree, 6 when they differ, 5 when a member does not answer or no common index appears.",
    run: digestsView,
  },
];

/** Runs `bkv admin ARGS`; errors propagate to main.ts's report(). */
export async function runAdmin(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    io.stdout(overview());
    return EXIT.OK;
  }
  if (argv[0] === "audit") return (await import("./admin-audit.js")).runAdminAudit(argv.slice(1), io);
  const command = COMMANDS.find((c) => c.name.split(" ").every((word, i) => argv[i] === word));
  if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(["admin", ...argv.slice(0, 2).filter((a) => !a.startsWith("-"))].join(" "))}`);
  const spec = { ...command, name: `admin ${command.name}`, flags: { ...ADMIN_FLAGS, ...command.flags } };
  const { args, rest } = splitPositionals(spec.flags, argv.slice(command.name.split(" ").length));
  const parsed = parseFlags(spec, rest);
  if (parsed.help) {
    io.stdout(`Usage: ${command.usage}\n\n${command.help}\n${ADMIN_HELP}\n`);
    return EXIT.OK;
  }
  checkPositionals(command, args);
  const { AdminClient } = await import("../admin/client.js");
  const timeout = intFlag(parsed, "timeout", 1, 3600);
  const given = (flag: string, variable: string) => stringFlag(parsed, flag) !== undefined || io.env[variable] !== undefined;
  const local = given("endpoints", "BKV_ADMIN_ENDPOINTS") && given("certs", "BKV_ADMIN_CERTS") ? undefined : await localAdmin(io.env);
  const budgetMs = (timeout ?? command.defaultTimeoutS ?? DEFAULT_TIMEOUT_S) * 1000;
  const client = connect(AdminClient, { endpoints: endpoints(parsed, io.env, local), tls: tlsFiles(parsed, io.env, local), retry: { deadlineMs: budgetMs }, deadline: Date.now() + budgetMs });
  const json = parsed.flags.get("json") === true;
  const print = (text: string, value: unknown) => io.stdout(json ? `${JSON.stringify(value, null, 2)}\n` : text);
  try {
    return await command.run({ args, parsed, io, client, json, print });
  } catch (err) {
    return reportAdminError(err, io);
  } finally {
    client.close();
  }
}

/** The admin client; TLS material that OpenSSL refuses (not PEM, a key of another certificate) is a usage error naming the flags. */
function connect(Client: typeof AdminClient, options: AdminClientOptions): AdminClient {
  try {
    return new Client(options);
  } catch (err) {
    throw new UsageError(`the operator certificate and key (--tls-cert, --tls-key; --certs DIR) are not a PEM certificate and its matching private key: ${(err as Error).message}`);
  }
}

/**
 * A refused caller means something else on the admin port: a certificate the
 * port does not admit, not a token (exit 1). Other errors go on to main.ts's
 * report().
 */
function reportAdminError(err: unknown, io: CliIo): number {
  if (!(err instanceof NotAuthorizedError)) throw err;
  io.stderr(`bkv admin: refused by ${err.address}: ${err.codeName}: ${err.serverMessage}\n` +
    "  the admin port admits an operator certificate (CN \"operator\" or \"operator-NAME\") from the cluster's CA: check --certs or --tls-cert\n");
  return EXIT.ERROR;
}

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length), "audit".length);
  const list = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n");
  return `bkv admin: operate a bkv cluster over its admin ports.

Usage: bkv admin COMMAND [args] [options]   (bkv admin COMMAND --help for details)

Commands:
${list}
  ${"audit".padEnd(width)}  audit commands (bkv admin audit --help)
${ADMIN_HELP}

Exit codes: 0 ok, 1 refused or failed (the node's message says why), 5 unavailable,
6 digests differ, 8 file I/O, 64 usage.
`;
}

/** Separates positional arguments from flags (a string flag without "=" takes the next argument). */
function splitPositionals(flags: Readonly<Record<string, FlagKind>>, argv: readonly string[]): { args: string[]; rest: string[] } {
  const args: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith("-")) {
      args.push(a);
      continue;
    }
    rest.push(a);
    const name = a.slice(2);
    if (flags[name] === "string" && i + 1 < argv.length) rest.push(argv[++i] as string);
  }
  return { args, rest };
}

function checkPositionals(c: AdminCommand, args: readonly string[]): void {
  const required = c.positionals.filter((p) => !p.endsWith("?")).length;
  if (args.length < required || args.length > c.positionals.length) {
    throw new UsageError(`\`bkv admin ${c.name}\` takes ${c.positionals.join(" ") || "no arguments"} (got ${args.length} argument(s)); usage: ${c.usage}`);
  }
}

function nodeIdArg(v: string | undefined): bigint {
  if (v === undefined || !/^[1-9][0-9]{0,15}$/.test(v) || Number(v) > Number.MAX_SAFE_INTEGER) throw new UsageError(`a node id must be a positive integer (got ${JSON.stringify(v ?? "")})`);
  return BigInt(v);
}

/** --request-id HEX (32 hex digits), else a new random one (reused by this command's own retries). */
function requestId(p: Parsed): Uint8Array {
  const hex = stringFlag(p, "request-id");
  if (hex === undefined) return new Uint8Array(randomBytes(16));
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new UsageError("--request-id must be 32 hex digits (16 bytes)");
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/**
 * The local cluster's admin settings: admin.json beside the client descriptor
 * ({"endpoints": ["host:port", ...], "certs": DIR}, DIR relative to the file),
 * written by deploy/local/start.sh; undefined when there is none.
 */
interface LocalAdmin {
  readonly file: string;
  readonly endpoints: readonly string[];
  readonly certs: string;
}

async function localAdmin(env: NodeJS.ProcessEnv): Promise<LocalAdmin | undefined> {
  const { descriptorPath } = await import("../sdk/descriptor.js");
  const file = join(dirname(descriptorPath(undefined, env)), "admin.json");
  if (!existsSync(file)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new UsageError(`${file}: not a local cluster's admin settings (${(err as Error).message}); pass --endpoints and --certs`);
  }
  const { endpoints, certs } = (value ?? {}) as { endpoints?: unknown; certs?: unknown };
  if (!Array.isArray(endpoints) || !endpoints.every((e) => typeof e === "string") || typeof certs !== "string") {
    throw new UsageError(`${file}: expected {"endpoints": ["host:port", ...], "certs": "DIR"}; pass --endpoints and --certs`);
  }
  return { file, endpoints, certs: isAbsolute(certs) ? certs : join(dirname(file), certs) };
}

function endpoints(p: Parsed, env: NodeJS.ProcessEnv, local: LocalAdmin | undefined): string[] {
  const given = stringFlag(p, "endpoints") ?? env.BKV_ADMIN_ENDPOINTS;
  const list = given === undefined ? [...(local?.endpoints ?? [])] : given.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (list.length === 0) throw new UsageError("no admin endpoint: pass --endpoints host:port[,host:port...] or set BKV_ADMIN_ENDPOINTS (or start a local cluster with `npm start`)");
  for (const e of list) if (!/^[^\s,]+:\d{1,5}$/.test(e)) throw new UsageError(`${given === undefined ? local?.file : "--endpoints"}: ${JSON.stringify(e)} is not host:port`);
  return list;
}

function tlsFiles(p: Parsed, env: NodeJS.ProcessEnv, local: LocalAdmin | undefined) {
  const dir = stringFlag(p, "certs") ?? env.BKV_ADMIN_CERTS ?? local?.certs;
  const file = (flag: string, name: string): Buffer => {
    const path = stringFlag(p, flag) ?? (dir === undefined ? undefined : join(dir, name));
    if (path === undefined) throw new UsageError(`no ${name}: pass --certs DIR (or set BKV_ADMIN_CERTS) or --${flag} FILE`);
    if (!existsSync(path)) throw new UsageError(`--${flag}: ${path} does not exist`);
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ClientError("IO", `--${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  return { ca: file("tls-ca", "ca.crt"), cert: file("tls-cert", "operator.crt"), key: file("tls-key", "operator.key") };
}
