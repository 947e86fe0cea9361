// The `bkv admin` commands that read the whole cluster: status, members,
// digests, and snapshot save. Each asks the leader for the members, then
// each member's own admin port.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { HsmState, MemberKind, NodeRole, type GetClusterStatusResponse, type MemberStatus } from "../../proto/gen/bkv/v1/admin_pb.js";
import { ClientError } from "../sdk/errors.js";
import type { AdminClient, NodeAnswer } from "../admin/client.js";
import type { Parsed } from "./args.js";
import type { CliIo } from "./io.js";
import { EXIT } from "./exit.js";

/** What a subcommand gets: its positional arguments, its flags, and a connected client. */
export interface AdminContext {
  readonly args: readonly string[];
  readonly parsed: Parsed;
  readonly io: CliIo;
  readonly client: AdminClient;
  readonly json: boolean;
  /** Prints `value` as JSON with --json, else `text`. */
  print(text: string, value: unknown): void;
}

/** The leader's status and the admin address of each of its members (undefined: unknown). */
async function leaderView(client: AdminClient): Promise<{ address: string; leader: GetClusterStatusResponse; members: Array<{ m: MemberStatus; address: string | undefined }> }> {
  const address = await client.leaderAddress();
  const leader = await client.call(address, "getClusterStatus", {});
  const members = leader.members.map((m) => ({ m, address: client.addresses.get(Number(m.nodeId)) ?? (m.adminAddress || undefined) }));
  return { address, leader, members };
}

const roleName = (r: NodeRole) => (NodeRole[r] ?? "UNSPECIFIED").toLowerCase().replace("_", "-");
const kindName = (k: MemberKind) => (k === MemberKind.LEARNER ? "learner" : "voter");

interface StatusRow {
  id: number; kind: string; role: string; term: number | null; commit: number | null; applied: number | null; snapshot: number | null;
  lag: number; reachable: boolean | null; version: string; records: number | null; storeBytes: number | null; hsm: string; health: string; admin: string;
}

/**
 * Every member's own view, then whether the leader's state registers bound
 * shares only. Without a leader (an outage, when status matters most) it
 * shows what the reachable nodes say, LAG against the highest commit index
 * seen, warns on stderr and exits 5.
 */
export async function statusView(ctx: AdminContext): Promise<number> {
  const leaderAddress = await ctx.client.leaderNow();
  // A leader is known: its status, retried (following it, until --timeout) when the call fails for a moment.
  const leader = leaderAddress === undefined ? undefined : (await ctx.client.onLeader("getClusterStatus", {})).response;
  const everyone = await ctx.client.statuses(ctx.client.knownAddresses());
  const seen = everyone.flatMap((a) => ("status" in a ? [a.status] : []));
  if (seen.length === 0) throw new ClientError("UNAVAILABLE", `no admin port answered: ${everyone.map((a) => `${a.address}: ${"error" in a ? a.error.message : ""}`).join("; ")}`);
  const members = leader?.members ?? unionOfMembers(seen);
  const commit = leader?.commitIndex ?? seen.reduce((m, s) => (s.commitIndex > m ? s.commitIndex : m), 0n);
  const rows = members.map((m) => statusRow(m, ctx.client.addresses.get(Number(m.nodeId)), everyone, commit, leader !== undefined));
  const cell = (v: number | null) => (v === null ? "-" : String(v));
  const boundSharesOnly = leader?.boundSharesOnly ?? null;
  ctx.print(table(["ID", "KIND", "ROLE", "TERM", "COMMIT", "APPLIED", "SNAPSHOT", "LAG", "REACHABLE", "VERSION", "RECORDS", "STORE", "HSM", "HEALTH", "ADMIN"],
    rows.map((r) => [String(r.id), r.kind, r.role, cell(r.term), cell(r.commit), cell(r.applied), cell(r.snapshot), String(r.lag), yesNo(r.reachable),
      r.version, cell(r.records), r.storeBytes === null ? "-" : bytes(r.storeBytes), r.hsm, r.health, r.admin])) + registrationsLine(boundSharesOnly),
  { leader: leader === undefined ? null : Number(leader.nodeId), term: leader === undefined ? null : Number(leader.term), boundSharesOnly, members: rows });
  if (leader !== undefined) return EXIT.OK;
  ctx.io.stderr("bkv: no leader known: each row is that node's own view (REACHABLE is unknown without a leader)\n");
  return EXIT.UNAVAILABLE;
}

/** What the leader's state takes in registrations (null: no leader, nothing printed). */
function registrationsLine(boundSharesOnly: boolean | null): string {
  if (boundSharesOnly === null) return "";
  return boundSharesOnly ? "registrations: bound shares only\n"
    : "registrations: unbound (v1) shares still accepted: once every node and client is upgraded, run `bkv admin require-bound-shares`\n";
}

function statusRow(m: MemberStatus, address: string | undefined, answers: readonly NodeAnswer[], commit: bigint, fromLeader: boolean): StatusRow {
  const a = answers.find((x) => x.address === address);
  const s = a !== undefined && "status" in a ? a.status : undefined;
  const why = address === undefined ? "admin address unknown" : a !== undefined && "error" in a ? `admin port: ${a.error.message}` : "";
  return {
    id: Number(m.nodeId), kind: kindName(m.kind), role: s === undefined ? "-" : roleName(s.role),
    term: num(s?.term), commit: num(s?.commitIndex), applied: num(s?.appliedIndex), snapshot: num(s?.snapshotIndex),
    lag: Math.max(0, Number(commit) - Number(s?.appliedIndex ?? m.matchIndex)), reachable: fromLeader ? m.reachable : null,
    version: s?.version ?? "-", records: num(s?.records), storeBytes: num(s?.storeBytes),
    hsm: s === undefined ? "-" : s.hsmState === HsmState.OK ? "ok" : `failing: ${s.hsmError}`,
    health: s === undefined ? why : s.serving ? "serving" : `not serving: ${s.notServingReason}`, admin: address ?? "",
  };
}

/** Without a leader: every member any node names, each once (the view of the node with the highest term first). */
function unionOfMembers(statuses: readonly GetClusterStatusResponse[]): MemberStatus[] {
  const byId = new Map<bigint, MemberStatus>();
  for (const s of [...statuses].sort((a, b) => Number(b.term - a.term))) for (const m of s.members) if (!byId.has(m.nodeId)) byId.set(m.nodeId, m);
  return [...byId.values()].sort((a, b) => Number(a.nodeId - b.nodeId));
}

const yesNo = (v: boolean | null) => (v === null ? "?" : v ? "yes" : "no");

export async function membersView(ctx: AdminContext): Promise<number> {
  const { leader, members } = await leaderView(ctx.client);
  const rows = members.map(({ m, address }) => ({
    id: Number(m.nodeId), kind: kindName(m.kind), leader: m.nodeId === leader.nodeId, peer: m.peerAddress, admin: address ?? "",
    match: Number(m.matchIndex), reachable: m.reachable,
  }));
  ctx.print(table(["ID", "KIND", "LEADER", "PEER", "ADMIN", "MATCH", "REACHABLE"],
    rows.map((r) => [String(r.id), r.kind, r.leader ? "*" : "", r.peer, r.admin || "-", String(r.match), r.reachable ? "yes" : "no"])),
  { leader: Number(leader.nodeId), term: Number(leader.term), members: rows });
  return EXIT.OK;
}

interface DigestRow { id: number; index: number; digest: string }

/** Every member's recorded digests, at the greatest index all of them recorded; retried until one appears or the deadline. */
export async function digestsView(ctx: AdminContext): Promise<number> {
  const deadline = Date.now() + (Number(ctx.parsed.flags.get("timeout") ?? 30) * 1000);
  for (;;) {
    const found = await commonDigests(ctx.client);
    if (found !== null) return printDigests(ctx, found);
    if (Date.now() > deadline) throw new ClientError("UNAVAILABLE", "no applied index is among every member's recent digests (the cluster is busy or a member lags): retry");
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function commonDigests(client: AdminClient): Promise<DigestRow[] | null> {
  const { members } = await leaderView(client);
  const lists = await Promise.all(members.map(async ({ m, address }) => {
    if (address === undefined) throw new ClientError("UNAVAILABLE", `node ${m.nodeId}'s admin address is unknown: add it to --endpoints`);
    const res = await client.call(address, "listStateDigests", {});
    return { id: Number(m.nodeId), digests: new Map(res.digests.map((d) => [Number(d.index), Buffer.from(d.digest).toString("hex")])) };
  }));
  const first = lists[0];
  if (first === undefined) return null;
  const common = [...first.digests.keys()].filter((i) => lists.every((l) => l.digests.has(i)));
  if (common.length === 0) return null;
  const index = Math.max(...common);
  return lists.map((l) => ({ id: l.id, index, digest: l.digests.get(index) as string }));
}

function printDigests(ctx: AdminContext, rows: DigestRow[]): number {
  const agree = new Set(rows.map((r) => r.digest)).size === 1;
  const index = rows[0]?.index ?? 0;
  const verdict = agree ? `all ${rows.length} members agree at index ${index}` : `MEMBERS DISAGREE at index ${index}: their states diverged`;
  ctx.print(`${table(["ID", "INDEX", "DIGEST"], rows.map((r) => [String(r.id), String(r.index), r.digest]))}${verdict}\n`, { index, agree, members: rows });
  return agree ? EXIT.OK : EXIT.INTEGRITY;
}

/** snapshot save FILE: TakeSnapshot on the leader, then its SaveSnapshot stream into FILE.partial, synced, renamed to FILE. */
export async function saveSnapshot(ctx: AdminContext): Promise<number> {
  const file = ctx.args[0] as string;
  if (existsSync(file)) throw new ClientError("IO", `${file} exists: not overwritten`);
  const address = await ctx.client.leaderAddress();
  const taken = await ctx.client.call(address, "takeSnapshot", {}, 120_000);
  const partial = `${file}.partial`;
  const hash = createHash("sha256");
  let size = 0;
  const out = await open(partial, "wx", 0o600).catch((err: NodeJS.ErrnoException) => { throw new ClientError("IO", `cannot create ${partial}: ${err.code ?? err.message}`); });
  try {
    for await (const chunk of ctx.client.snapshot(address)) {
      await out.write(chunk);
      hash.update(chunk);
      size += chunk.length;
    }
    await out.sync();
    await out.close();
    await rename(partial, file);
  } catch (err) {
    await out.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw err instanceof ClientError ? err : new ClientError("IO", `writing ${file}: ${(err as Error).message}`);
  }
  const sha256 = hash.digest("hex");
  ctx.print(`saved the snapshot of the leader at ${address} (taken at index ${taken.index}, term ${taken.term}) to ${file}: ${size} bytes, sha256 ${sha256}\n`,
    { file, leader: address, index: Number(taken.index), term: Number(taken.term), bytes: size, sha256 });
  return EXIT.OK;
}

/** Columns padded to their widest cell, two spaces apart. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return `${[line(headers), ...rows.map(line)].join("\n")}\n`;
}

function num(v: bigint | undefined): number | null {
  return v === undefined ? null : Number(v);
}

function bytes(n: number): string {
  return n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

/** shared-shares: the leader's scan of its state for shares held by several users' records (copies made before bound shares). */
export async function sharedSharesView(ctx: AdminContext): Promise<number> {
  const address = await ctx.client.leaderAddress();
  const r = await ctx.client.call(address, "findSharedShares", {}, Infinity); // the command's budget (--timeout, 600 s here) bounds it
  const rows = r.shared.map((s) => ({ node: Number(s.nodeId), publicShare: Buffer.from(s.publicShare).toString("hex"), holders: Number(s.holders), users: s.users }));
  const where = `node ${r.nodeId} at applied index ${r.appliedIndex}, ${r.records} records`;
  const verdict = rows.length === 0 ? `no share is held by more than one user (${where})\n`
    : `${rows.length}${r.truncated ? "+" : ""} SHARES HELD BY SEVERAL USERS (${where}): all but the first registration of each are copies; refuse those users' client tokens (docs/operations.md, "Bound shares")\n`;
  const text = rows.length === 0 ? verdict
    : table(["NODE", "SHARE (K_i)", "HOLDERS", "USERS"], rows.map((x) => [String(x.node), `${x.publicShare.slice(0, 16)}…`, String(x.holders), x.users.join(",")])) + verdict;
  ctx.print(text, { node: Number(r.nodeId), appliedIndex: Number(r.appliedIndex), records: Number(r.records), truncated: r.truncated, shared: rows });
  return rows.length === 0 ? EXIT.OK : EXIT.INTEGRITY;
}
