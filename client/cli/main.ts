#!/usr/bin/env node
// The `bkv` command line (docs/client.md). Run: npx tsx client/cli/main.ts ...
//
// Exit codes: 0 ok; 1 unexpected error; 2 wrong password; 3 record locked;
// 4 record not found / already exists; 5 cluster unavailable or too few
// nodes; 6 integrity (record mismatch, unverified registration, backup file
// altered / wrong key / not a backup); 2 also for inconsistent evaluations
// (a wrong password, or a faulty node); 7 bad
// cluster descriptor; 8 file I/O; 9 concurrent change (a concurrent recovery
// superseded this one twice, or the record changed twice while recovering:
// nothing is wrong, try again); 10 throttled (too many attempts on the record
// without a recovery: retry after the time printed); 11 rate limited (an admission limit, not the
// guess limit: retry after the time printed); 12 not authorized (no token, an
// invalid one, or one for another user); 64 usage (bad arguments or key format);
// 130 interrupted (Ctrl-C at a password prompt).
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type * as SdkErrors from "../sdk/errors.js";
import { packageVersion } from "../../proto/version.js";
import { InterruptedError, UsageError, parseFlags } from "./args.js";
import { CLUSTER_HELP, COMMANDS, type Command } from "./commands.js";
import { type CliIo, processIo } from "./io.js";
import { EXIT } from "./exit.js";
import { quietIpServerNameWarning } from "./warnings.js";

export { EXIT } from "./exit.js";

const EXIT_BY_CODE: Readonly<Record<string, number>> = {
  WRONG_PASSWORD: EXIT.WRONG_PASSWORD,
  RECORD_LOCKED: EXIT.LOCKED,
  RECORD_NOT_FOUND: EXIT.RECORD,
  RECORD_EXISTS: EXIT.RECORD,
  ATTEMPT_SUPERSEDED: EXIT.CONCURRENT,
  RECORD_CHANGED: EXIT.CONCURRENT,
  THROTTLED: EXIT.THROTTLED,
  RATE_LIMITED: EXIT.RATE_LIMITED,
  NOT_AUTHORIZED: EXIT.NOT_AUTHORIZED,
  TOKEN: EXIT.NOT_AUTHORIZED,
  UNAVAILABLE: EXIT.UNAVAILABLE,
  TRANSIENT: EXIT.UNAVAILABLE,
  NOT_ENOUGH_EVALUATIONS: EXIT.UNAVAILABLE,
  RECORD_MISMATCH: EXIT.INTEGRITY,
  UNVERIFIED_REGISTRATION: EXIT.INTEGRITY,
  INCONSISTENT_EVALUATIONS: EXIT.WRONG_PASSWORD,
  BACKUP_FORMAT: EXIT.INTEGRITY,
  BACKUP_WRONG_KEY: EXIT.INTEGRITY,
  BACKUP_INTEGRITY: EXIT.INTEGRITY,
  DESCRIPTOR: EXIT.DESCRIPTOR,
  CLUSTER_MISMATCH: EXIT.DESCRIPTOR,
  IO: EXIT.IO,
  KEY_FORMAT: EXIT.USAGE,
  INVALID_INPUT: EXIT.USAGE,
};

/** The exit code for an error a command threw; `errors`: the SDK's error classes. */
export function exitCodeFor(err: unknown, { ClientError, RpcError }: typeof SdkErrors): number {
  if (err instanceof RpcError && (err.codeName === "UNAVAILABLE" || err.codeName === "DEADLINE_EXCEEDED")) return EXIT.UNAVAILABLE;
  if (err instanceof ClientError) return EXIT_BY_CODE[err.code] ?? EXIT.ERROR;
  return EXIT.ERROR;
}

/** Runs one `bkv` invocation; returns the exit code. Never throws. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    if (argv[0] === "admin") return await (await import("./admin.js")).runAdmin(argv.slice(1), io);
    const found = findCommand(argv);
    if (found === undefined) {
      if (argv.length === 1 && argv[0] === "--version") {
        io.stdout(`bkv ${packageVersion()}\n`);
        return EXIT.OK;
      }
      if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
        io.stdout(overview());
        return EXIT.OK;
      }
      throw new UsageError(`unknown command ${JSON.stringify(argv.slice(0, 2).join(" "))}`);
    }
    const parsed = parseFlags(found.command, argv.slice(found.words));
    if (parsed.help) {
      io.stdout(commandHelp(found.command));
      return EXIT.OK;
    }
    return await found.command.run(parsed, io);
  } catch (err) {
    return await report(err, io);
  }
}

function findCommand(argv: readonly string[]): { command: Command; words: number } | undefined {
  for (const words of [2, 1]) {
    const name = argv.slice(0, words).join(" ");
    const command = COMMANDS.find((c) => c.name === name);
    if (command !== undefined && argv.length >= words) return { command, words };
  }
  return undefined;
}

/**
 * Prints a command's error; returns its exit code. The SDK's errors load only
 * here (see commands.ts). Every message may carry a node's text, so each
 * line passes through printable(): no control character reaches the terminal.
 */
async function report(err: unknown, io: CliIo): Promise<number> {
  if (err instanceof InterruptedError) {
    io.stderr("bkv: interrupted\n");
    return EXIT.INTERRUPTED;
  }
  if (err instanceof UsageError) {
    io.stderr(`bkv: ${err.message}\nRun \`bkv --help\` or \`bkv COMMAND --help\`.\n`);
    return EXIT.USAGE;
  }
  const errors = await import("../sdk/errors.js");
  const { ClientError, InconsistentEvaluationsError, WrongPasswordError, printable } = errors;
  const say = (line: string, hint = "") => io.stderr(`bkv: ${printable(line)}\n${hint}`);
  const code = exitCodeFor(err, errors);
  if (err instanceof WrongPasswordError || err instanceof InconsistentEvaluationsError) {
    const hint = err instanceof WrongPasswordError && err.conclusive ? "" : " (or a faulty node: the nodes' answers disagree)";
    say(`wrong password${hint}: ${err.attemptsRemaining} attempts remaining`);
  } else if (err instanceof errors.AttemptSupersededError) {
    say(`superseded by a concurrent recovery of the same record, twice: ${err.message}`);
  } else if (err instanceof errors.RateLimitedError) {
    say(`rate limited by ${err.address} (too many calls: an admission limit, not the guess limit): retry after ${Math.ceil(err.retryAfterMs / 1000)} s`);
  } else if (err instanceof errors.NotAuthorizedError) {
    say(`not authorized by ${err.address}: ${err.codeName}: ${err.serverMessage}`,
      "  pass a token for this user from your account service: --token-file FILE or BKV_TOKEN\n");
  } else if (err instanceof errors.RecordChangedError) {
    say("the record changed (overwritten, or deleted and registered again) while recovering, twice; no attempt was counted: try again");
  } else if (err instanceof ClientError) {
    say(err.message);
  } else {
    say(`unexpected error: ${err instanceof Error ? err.message : String(err)}`);
  }
  return code;
}

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const list = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n");
  return `bkv: client of a bkv Backup Key Vault cluster.

Usage: bkv COMMAND [options]   (bkv COMMAND --help for details; bkv --version)

Commands:
${list}
  ${"admin".padEnd(width)}  operate the cluster over the admin port, check audit logs (bkv admin --help)

Passwords and keys are read from stdin (or a key file), never from arguments.
${CLUSTER_HELP}

Exit codes: 0 ok, 1 unexpected error, 2 wrong password, 3 record locked, 4 record not found
or already exists, 5 cluster unavailable, 6 integrity failure, 7 bad descriptor, 8 file I/O,
9 concurrent change (superseded by a concurrent recovery, or the record changed): try again,
10 throttled (attempts on the record spaced too closely: retry later), 11 rate limited (retry later),
12 not authorized (token missing, invalid or for another user), 64 usage, 130 interrupted (Ctrl-C).
`;
}

function commandHelp(c: Command): string {
  const clusterFlags = "timeout" in c.flags ? CLUSTER_HELP : "\n  -h, --help       this help";
  return `Usage: ${c.usage}\n\n${c.help}\n${clusterFlags}\n`;
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

/**
 * Exits with `code` once stdout and stderr are flushed. The command is done;
 * its clients' close() ended their calls and connections (client/sdk/
 * channels.ts), but a TCP connect that gets no answer at all stays in
 * grpc-js until the kernel gives up, and nothing else may hold the process.
 */
function exitWhenFlushed(code: number): void {
  process.exitCode = code;
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}

if (isMain()) {
  quietIpServerNameWarning();
  void run(process.argv.slice(2), processIo()).then(exitWhenFlushed);
}
