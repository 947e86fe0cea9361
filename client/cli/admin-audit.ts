// `bkv admin audit verify FILE` and `bkv admin audit --user U FILE`: checks a
// node's audit log (<dataDir>/audit.log, format in proto/audit.ts) and lists
// one user's events. `runAdminAudit` takes the words after `audit`; the
// `bkv admin` dispatcher (admin.ts) calls it.
//
// Exit codes: 0 the chain verifies (and the events were listed); 6 it does
// not (the line and the reason on stderr), or it records a gap (lines the
// node found lost at a start: each on stderr; 0 with --allow-gaps); 8 the
// file cannot be read; 64 usage.
import { readFile } from "node:fs/promises";
import { type AuditGapNote, type AuditLine, parseAuditLine, verifyAuditChain } from "../../proto/audit.js";
import type { CliIo } from "./io.js";

export const AUDIT_USAGE = `Usage: bkv admin audit verify [--allow-gaps] [--json] FILE
       bkv admin audit --user U [--allow-gaps] [--json] FILE

verify: checks every line of a node's audit log (its <dataDir>/audit.log): canonical JSON, each
  line's hash, the chain of prev hashes from the first line, increasing Raft indexes. Prints the
  number of lines and the last index, or the first line that fails and why (exit 6).
  A gap line (the node found, at a start, that the file had lost lines its store had recorded) is
  named on stderr and exits 6 too; --allow-gaps still names them but exits 0 (gaps already looked into).
--user U: verifies the file, then prints U's events (registrations, attempts, lock-outs,
  confirmations, deletions) as their JSON lines, oldest first (within a gap, events may be missing).
--json: one JSON object on stdout: {file, ok, lines, lastIndex, head, gaps} (ok false: {file, ok, line,
  reason}), with --user also {events}; the exit codes and stderr are as without it.
`;

const EXIT = { OK: 0, INTEGRITY: 6, IO: 8, USAGE: 64 } as const;

export async function runAdminAudit(args: readonly string[], io: CliIo): Promise<number> {
  const parsed = parseArgs(args);
  if (parsed === "help") {
    io.stdout(AUDIT_USAGE);
    return EXIT.OK;
  }
  if (typeof parsed === "string") {
    io.stderr(`bkv: ${parsed}\n${AUDIT_USAGE}`);
    return EXIT.USAGE;
  }
  let text: string;
  try {
    text = await readFile(parsed.file, "utf8");
  } catch (err) {
    io.stderr(`bkv: cannot read ${parsed.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
    return EXIT.IO;
  }
  const verdict = verifyAuditChain(text);
  if (!verdict.ok) {
    io.stderr(`bkv: ${parsed.file}: line ${verdict.line} does not verify: ${verdict.reason}\n`);
    if (parsed.json) io.stdout(`${JSON.stringify({ file: parsed.file, ok: false, line: verdict.line, reason: verdict.reason }, null, 2)}\n`);
    return EXIT.INTEGRITY;
  }
  const events = parsed.user === undefined ? undefined : userEvents(text, parsed.user);
  if (parsed.json) {
    const { lines, lastIndex, lastHash: head, gaps } = verdict;
    io.stdout(`${JSON.stringify({ file: parsed.file, ok: true, lines, lastIndex, head, gaps, ...(events === undefined ? {} : { events }) }, null, 2)}\n`);
  } else if (events === undefined) {
    io.stdout(`${parsed.file}: ${verdict.lines} lines verified, last index ${verdict.lastIndex}, head ${verdict.lastHash}\n`);
  } else {
    for (const line of events) io.stdout(`${JSON.stringify(line)}\n`);
  }
  for (const gap of verdict.gaps) io.stderr(`bkv: ${parsed.file}: ${gapText(gap)}\n`);
  return verdict.gaps.length > 0 && !parsed.allowGaps ? EXIT.INTEGRITY : EXIT.OK;
}

/** What a gap line says, for an operator. */
export function gapText(g: AuditGapNote): string {
  const held = g.afterIndex < 0 ? "the file held no line" : `the file's chain ended at index ${g.afterIndex}`;
  const how = g.reason === "differs" ? ` but held another line at index ${g.expectedIndex}: lines were lost or replaced` : ", before it: lines were lost";
  return `line ${g.line} records a gap: at a start, the node's store had recorded the chain's head at index ${g.expectedIndex} (hash ${g.expectedHash}); ${held}${how} (compare with another node's file)`;
}

/** The lines of a verified file that concern `user`. */
export function userEvents(text: string, user: string): AuditLine[] {
  return text.split("\n").filter((r) => r !== "").map(parseAuditLine).filter((l) => l.user === user);
}

function parseArgs(all: readonly string[]): { file: string; user?: string; allowGaps: boolean; json: boolean } | "help" | string {
  if (all.includes("-h") || all.includes("--help")) return "help";
  const allowGaps = all.includes("--allow-gaps");
  const json = all.includes("--json");
  const args = all.filter((a) => a !== "--allow-gaps" && a !== "--json");
  if (args[0] === "verify") return args.length === 2 ? { file: args[1] as string, allowGaps, json } : "`audit verify` takes exactly one FILE";
  if (args[0] === "--user") {
    const [, user, file, ...rest] = args;
    if (user === undefined || user === "" || file === undefined || rest.length > 0) return "`audit --user U FILE` takes a user and one FILE";
    return { file, user, allowGaps, json };
  }
  return `unknown audit command ${JSON.stringify(args.join(" "))}`;
}
