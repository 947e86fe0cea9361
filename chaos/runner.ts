// The chaos run: cluster with proxied peer links, workload, nemesis, healing,
// final reads, checkers, report (chaos/out/<seed>/).
import { createHash } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { status as grpcStatus } from "@grpc/grpc-js";
import { VaultClient, WrongPasswordError, RecordLockedError, RecordNotFoundError } from "../client/sdk/index.js";
import { ChaosCluster, sleep, waitFor } from "./cluster.js";
import { checkAll } from "./checkers/index.js";
import type { FinalRecord, FinalState } from "./checkers/types.js";
import { leadersByTerm } from "./checkers/leaders.js";
import { HistoryWriter } from "./history.js";
import { generateSchedule, runSchedule, type NemesisExecutor, type RecoveryPhase } from "./nemesis.js";
import { applyPartition, healAll } from "./partitions.js";
import { faultCount, htmlReport, terminalSummary, violationCount } from "./report.js";
import { clientOptions, hex, Workload } from "./workload.js";

export interface RunOptions {
  nodes: number;
  durationS: number;
  seed: string;
  clients?: number;
  users?: number;
  guessLimit?: number;
  outDir?: string;
  /** Keep the cluster's data dir (tokens, data, logs) after the run. */
  keep?: boolean;
  log?: (line: string) => void;
}

export interface RunResult {
  faults: number;
  violations: number;
  outDir: string;
  summary: string;
}

const ROOT = resolve(import.meta.dirname, "..");

export async function runChaos(o: RunOptions): Promise<RunResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const outDir = o.outDir ?? join(ROOT, "chaos/out", o.seed);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const clusterDir = join(outDir, "cluster");
  log(`starting ${o.nodes} nodes in ${clusterDir}`);
  const cluster = await ChaosCluster.start({ size: o.nodes, dir: clusterDir });
  try {
    const descriptor = await cluster.descriptor();
    // Time 0 of the history (and of the schedule) is the start of the workload.
    const history = new HistoryWriter(join(outDir, "history.jsonl"));
    const users = Array.from({ length: o.users ?? 6 }, (_, i) => `user-${i + 1}`);
    const workload = new Workload({
      descriptor, clients: o.clients ?? 4, users, guessLimit: o.guessLimit ?? 5, seed: o.seed, history, nodes: cluster.ids,
      readNode: (node, user) => readRecord(cluster, node, user),
      onRecoveryStart: (user) => recoveryStarts.emit(user),
    });
    const recoveryStarts = new Signal();
    const executor = makeExecutor(cluster, recoveryStarts);
    const schedule = generateSchedule({ seed: o.seed, nodes: cluster.ids, durationMs: o.durationS * 1000 });
    writeFileSync(join(outDir, "schedule.json"), JSON.stringify(schedule, null, 1));
    log(`workload and nemesis for ${o.durationS} s (${schedule.length} faults scheduled)`);
    const running = workload.run();
    const deadline = Date.now() + o.durationS * 1000;
    await runSchedule(executor, schedule, history, o.seed, () => Date.now() >= deadline);
    const left = deadline - Date.now();
    if (left > 0) await sleep(left);
    workload.stop();
    await running;
    const accepted = [...cluster.proxies.values()].reduce((n, p) => n + p.accepted, 0);
    log(`healing and collecting the final state (peer connections through the proxies so far: ${accepted})`);
    for (const id of cluster.ids) {
      cluster.resume(id);
      cluster.restart(id);
    }
    const final = await collectFinalState(cluster, workload, history, workload.users);
    history.close();
    const logs = new Map(cluster.ids.map((id) => [id, cluster.logOf(id)]));
    const results = checkAll({ events: history.events, final, logs, guessLimit: o.guessLimit ?? 5 });
    const summaryIn = { seed: o.seed, nodes: o.nodes, durationS: o.durationS, events: history.events, results, leaders: leadersByTerm(logs) };
    const summary = terminalSummary(summaryIn);
    writeFileSync(join(outDir, "report.html"), htmlReport(summaryIn));
    writeFileSync(join(outDir, "summary.txt"), summary + "\n");
    writeFileSync(join(outDir, "final-state.json"), JSON.stringify(final, null, 1));
    return { faults: faultCount(history.events), violations: violationCount(results), outDir, summary };
  } finally {
    await cluster.close();
    if (!o.keep) {
      for (const id of cluster.ids) {
        rmSync(join(clusterDir, `data-${id}`), { recursive: true, force: true });
        rmSync(join(clusterDir, `hsm-${id}`), { recursive: true, force: true });
      }
      rmSync(join(clusterDir, "certs"), { recursive: true, force: true });
    }
  }
}

/** A one-shot broadcast of recovery starts to whoever waits for one. */
class Signal {
  private waiters: ((user: string) => void)[] = [];
  emit(user: string): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f(user);
  }
  next(timeoutMs: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(undefined), timeoutMs);
      this.waiters.push((u) => {
        clearTimeout(t);
        resolve(u);
      });
    });
  }
}

async function readRecord(cluster: ChaosCluster, node: number, user: string): Promise<(FinalRecord & { digest: string; appliedIndex: number }) | null> {
  const v = cluster.vault(node);
  try {
    const r = await v.client.getRecordInfo({ userId: user }, { deadline: new Date(Date.now() + 1500) });
    return { version: r.version, attemptsRemaining: r.attemptsRemaining, locked: r.locked, digest: hex(r.recordDigest), appliedIndex: Number(r.appliedIndex) };
  } catch (err) {
    if ((err as { code?: number }).code === grpcStatus.NOT_FOUND) return null;
    throw err;
  } finally {
    v.close();
  }
}

/** Delay after the begin is seen committed, per phase (approximate: the client's steps take a few ms each). */
const PHASE_DELAY_MS: Record<RecoveryPhase, number> = { "after-begin": 0, "between-evaluations": 3, "before-confirm": 15 };

function makeExecutor(cluster: ChaosCluster, recoveryStarts: Signal): NemesisExecutor {
  return {
    nodes: cluster.ids,
    killNode: (id) => cluster.kill(id),
    restartNode: async (id) => cluster.restart(id),
    pause: async (id) => cluster.pause(id),
    resume: async (id) => cluster.resume(id),
    partition: async (spec) => applyPartition(cluster.proxies, cluster.ids, spec),
    setLatency: async (ms) => {
      for (const p of cluster.proxies.values()) p.setLatency(ms);
    },
    resetLinks: async () => {
      for (const p of cluster.proxies.values()) p.resetAll();
    },
    heal: async () => healAll(cluster.proxies),
    leader: () => cluster.leader(),
    waitRecoveryPhase: async (phase, timeoutMs) => {
      const user = await recoveryStarts.next(timeoutMs);
      if (user === undefined) return undefined;
      const lead = await cluster.leader();
      if (lead === undefined) return user;
      const before = await readRecord(cluster, lead, user).catch(() => null);
      if (before === null) return user;
      // The begin is committed when the leader's counter for the user moves.
      await waitFor(async () => {
        const now = await readRecord(cluster, lead, user);
        return now === null || now.attemptsRemaining !== before.attemptsRemaining || now.appliedIndex > before.appliedIndex + 50 ? true : undefined;
      }, "the recovery's begin", 3000).catch(() => undefined);
      await sleep(PHASE_DELAY_MS[phase]);
      return user;
    },
    sleep,
  };
}

async function collectFinalState(cluster: ChaosCluster, workload: Workload, history: HistoryWriter, users: string[]): Promise<FinalState> {
  await cluster.waitReady(60_000);
  await waitConverged(cluster);
  const records: Record<string, FinalRecord | null> = {};
  const lead = await cluster.waitReady(30_000);
  for (const u of users) {
    const r = await readRecord(cluster, lead, u);
    records[u] = r === null ? null : { version: r.version, attemptsRemaining: r.attemptsRemaining, locked: r.locked };
  }
  const finalRecoveries = await finalRecover(cluster, workload, records);
  await waitConverged(cluster);
  for (const u of users) {
    const r = await readRecord(cluster, lead, u);
    records[u] = r === null ? null : { version: r.version, attemptsRemaining: r.attemptsRemaining, locked: r.locked };
  }
  const nodes = [];
  for (const id of cluster.ids) {
    const st = await cluster.status(id, 3000);
    const h = createHash("sha256");
    for (const u of users) {
      const r = await readRecord(cluster, id, u);
      h.update(`${u}|${r === null ? "-" : `${r.version}|${r.attemptsRemaining}|${r.locked}|${r.digest}`}\n`);
    }
    nodes.push({ node: id, appliedIndex: Number(st.appliedIndex), digest: h.digest("hex") });
    history.append({ type: "node-state", node: id, appliedIndex: Number(st.appliedIndex), digest: nodes.at(-1)!.digest, time: history.now() });
  }
  return { nodes, records, finalRecoveries };
}

/** Waits until every node applied the same index (the leader's commit index). */
async function waitConverged(cluster: ChaosCluster): Promise<void> {
  await waitFor(async () => {
    const sts = await Promise.all(cluster.ids.map((id) => cluster.status(id)));
    const idx = new Set(sts.map((s) => Number(s.appliedIndex)));
    const commit = Math.max(...sts.map((s) => Number(s.commitIndex)));
    return idx.size === 1 && [...idx][0]! >= commit ? true : undefined;
  }, "all nodes to apply the same index", 60_000).catch(() => undefined);
}

/** After healing: recover every present, unlocked record with its possibly-current passwords (newest first). Recorded as process 0. */
async function finalRecover(cluster: ChaosCluster, workload: Workload, records: Record<string, FinalRecord | null>): Promise<FinalState["finalRecoveries"]> {
  const out: Record<string, NonNullable<FinalState["finalRecoveries"]>[string]> = {};
  const client = new VaultClient(await cluster.descriptor(), clientOptions(() => {}));
  try {
    for (const [user, rec] of Object.entries(records)) {
      if (rec === null || rec.locked) continue;
      const m = workload.models.get(user)!;
      const all = [...new Set([m.current, ...[...m.possible].reverse()].filter((x): x is string => x !== undefined))];
      // Never lock a record by probing: keep one attempt spare.
      const candidates = all.slice(0, Math.max(1, rec.attemptsRemaining - 1));
      out[user] = candidates.length < all.length ? "inconclusive" : "wrong-password";
      for (const pw of candidates) {
        const seen: { outcome: NonNullable<FinalState["finalRecoveries"]>[string] } = { outcome: "unavailable" };
        await workload.record(0, "recover", user, { passwordCorrect: true }, async () => {
          try {
            const key = await client.recover(user, pw);
            seen.outcome = "ok";
            return { keyReleased: true, keyMatches: m.keys.has(hex(key)) };
          } catch (err) {
            seen.outcome = err instanceof WrongPasswordError ? "wrong-password" : err instanceof RecordLockedError ? "locked" : err instanceof RecordNotFoundError ? "not-found" : "unavailable";
            throw err;
          }
        });
        if (seen.outcome !== "wrong-password") {
          out[user] = seen.outcome;
          break;
        }
      }
    }
  } finally {
    client.close();
  }
  return out;
}
