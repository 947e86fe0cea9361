// At most one leader per term, from the nodes' JSON log lines (and leader
// events in the history). The parser is tolerant: a line counts as a
// leadership claim when its message matches `messages` and it names a term and
// a leader equal to the logging node (or has role "StateLeader"/"leader").
// bkv-node prints: {"msg":"leader changed","node":N,"leader":L,"term":T,"role":"StateLeader",...}
import type { HistoryEvent } from "../history.js";
import { result, type CheckResult, type Violation } from "./types.js";

const NAME = "leaders";

export interface LeaderClaim {
  node: number;
  term: number;
  /** Where it came from, for the report (e.g. "node 2 log line 17"). */
  source: string;
}

export interface LeaderLogOptions {
  messages?: RegExp;
  nodeFields?: string[];
  leaderFields?: string[];
  termFields?: string[];
}

const DEFAULTS: Required<LeaderLogOptions> = {
  messages: /leader changed|became leader|becomeLeader|elected leader/i,
  nodeFields: ["node", "nodeId", "node_id", "id", "self"],
  leaderFields: ["leader", "lead", "leaderId"],
  termFields: ["term", "Term"],
};

function num(o: Record<string, unknown>, fields: readonly string[]): number | undefined {
  for (const f of fields) {
    const v = o[f];
    if (typeof v === "number" && Number.isFinite(v)) return v;
    if (typeof v === "string" && /^\d+$/.test(v)) return Number(v);
  }
  return undefined;
}

/** Leadership claims a node made about itself in its log. Lines that are not JSON are skipped. */
export function parseLeaderClaims(node: number, log: string, options: LeaderLogOptions = {}): LeaderClaim[] {
  const o = { ...DEFAULTS, ...options };
  const claims: LeaderClaim[] = [];
  log.split("\n").forEach((line, i) => {
    if (!line.startsWith("{")) return;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof e.msg !== "string" || !o.messages.test(e.msg)) return;
    const term = num(e, o.termFields);
    const self = num(e, o.nodeFields) ?? node;
    const leader = num(e, o.leaderFields);
    const role = typeof e.role === "string" ? e.role.toLowerCase() : "";
    const isSelf = leader === undefined ? role.includes("leader") || /became leader/i.test(e.msg) : leader === self && (role === "" || role.includes("leader"));
    if (term !== undefined && isSelf) claims.push({ node: self, term, source: `node ${node} log line ${i + 1}` });
  });
  return claims;
}

export function checkLeaders(events: readonly HistoryEvent[], logs: ReadonlyMap<number, string>, options: LeaderLogOptions = {}): CheckResult {
  const claims: LeaderClaim[] = [];
  for (const [node, log] of logs) claims.push(...parseLeaderClaims(node, log, options));
  for (const e of events) if (e.type === "leader") claims.push({ node: e.node, term: e.term, source: `history t=${e.time.toFixed(0)}` });
  const byTerm = new Map<number, LeaderClaim[]>();
  for (const c of claims) byTerm.set(c.term, [...(byTerm.get(c.term) ?? []), c]);
  const violations: Violation[] = [];
  for (const [term, cs] of [...byTerm].sort((a, b) => a[0] - b[0])) {
    const nodes = [...new Set(cs.map((c) => c.node))];
    if (nodes.length > 1)
      violations.push({ checker: NAME, subject: `term ${term}`, description: `term ${term} has ${nodes.length} leaders: ${cs.map((c) => `node ${c.node} (${c.source})`).join(", ")}` });
  }
  const notes = claims.length === 0 ? ["no leadership claims found in the logs (check the log format)"] : [`${byTerm.size} term(s) with a leader`];
  return result(NAME, violations, notes);
}

/** Leaders by term (first claimant) for the report. */
export function leadersByTerm(logs: ReadonlyMap<number, string>, options: LeaderLogOptions = {}): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const [node, log] of logs)
    for (const c of parseLeaderClaims(node, log, options)) {
      const list = out.get(c.term) ?? [];
      if (!list.includes(c.node)) list.push(c.node);
      out.set(c.term, list);
    }
  return out;
}
