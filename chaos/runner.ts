// The chaos run against a target: workload, nemesis, healing, final reads,
// checkers, report (OUT/<seed>/). The target is where the nodes run: local
// processes with proxied peer links (chaos/cluster.ts LocalTarget, `runChaos`)
// or pods of a Kubernetes cluster (chaos/k8s/target.ts). Same workload, same
// checkers, same report, same last line `faults: F, violations: V`.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { VaultClient, WrongPasswordError, RecordLockedError, RecordNotFoundError, type ClusterDescriptor, type TokenProvider } from "../client/sdk/index.js";
import { ChaosCluster, LocalTarget } from "./cluster.js";
import { sleep, waitFor } from "./net.js";
import { checkAll, checkHistoryOnly, checkRecovered } from "./checkers/index.js";
import type { FinalRecord, FinalState } from "./checkers/types.js";
import { leadersByTerm } from "./checkers/leaders.js";
import { HistoryWriter } from "./history.js";
import { generateSchedule, runSchedule, type NemesisExecutor, type RecoveryPhase } from "./nemesis.js";
import type { ChaosTarget } from "./target.js";
import { type WorkloadShape, faultCount, violationCount, writeReport } from "./report.js";
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
  /** Aborting stops the workload and the nemesis; the run then rejects with RunAborted after closing the target. */
  signal?: AbortSignal;
  /** How long the cluster's first election may take (default chaos/cluster.ts START_TIMEOUT_MS, 90 s). */
  startTimeoutMs?: number;
  /** How long the cluster may take to be ready again after healing (default 60 s); longer is a violation. */
  recoverTimeoutMs?: number;
  /** The command that replays this run (printed in the summary and kept in run.json). */
  replay?: string;
  /** Called as soon as the target exists, before its processes start (the CLI keeps it for a forced exit). */
  onTarget?: (t: ChaosTarget) => void;
}

export interface RunResult {
  faults: number;
  violations: number;
  outDir: string;
  summary: string;
}

/** After healing, the cluster did not become ready (or its final state could not be read): a liveness violation. */
export class NotRecovered extends Error {
  override readonly name = "NotRecovered";
}

/** The run was aborted (signal) before healing; no full verdict. */
export class RunAborted extends Error {
  /** The partial report written on the abort (the history-only checkers), when the workload had started. */
  partial: RunResult | undefined;
  constructor(readonly reason: string) {
    super(`run aborted (${reason}): no verdict`);
    this.name = "RunAborted";
  }
}

const ROOT = resolve(import.meta.dirname, "..");

/** A local run: starts `o.nodes` node processes, runs against them, stops them. */
export async function runChaos(o: RunOptions): Promise<RunResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const outDir = o.outDir ?? runOutDir(o.seed);
  const kept = prepareOutDir(outDir);
  if (kept !== undefined) log(`the previous run in ${outDir} is kept as ${kept}`);
  const clusterDir = join(outDir, "cluster");
  log(`starting ${o.nodes} nodes in ${clusterDir}`);
  throwIfAborted(o.signal);
  const cluster = await ChaosCluster.start({ size: o.nodes, dir: clusterDir, startTimeoutMs: o.startTimeoutMs, signal: o.signal }, (c) => o.onTarget?.(new LocalTarget(c))).catch((err: unknown) => {
    if (!o.keep) removeClusterState(clusterDir);
    throwIfAborted(o.signal);
    throw err;
  });
  const target = new LocalTarget(cluster);
  try {
    return await runAgainst(target, { ...o, outDir, log });
  } finally {
    await target.close();
    if (!o.keep) removeClusterState(clusterDir);
  }
}

/** Where a local run with this seed writes (chaos/out/<seed>). */
export function runOutDir(seed: string): string {
  return join(ROOT, "chaos/out", seed);
}

/**
 * Removes what a run without --keep must not leave in its cluster dir: the nodes' data dirs and SoftHSM
 * tokens, the certificates and the development issuer's private key. Keeps the configs and logs.
 */
export function removeClusterState(clusterDir: string): void {
  if (!existsSync(clusterDir)) return;
  for (const f of readdirSync(clusterDir))
    if (/^(data|hsm)-\d+$|^certs$|^dev-issuer\.key\.json$/.test(f)) rmSync(join(clusterDir, f), { recursive: true, force: true });
}

/**
 * Creates a run's output directory, empty. A previous run's directory there (a replay of the same seed) is
 * kept, renamed `<dir>.<its time>` (returned), so that a replay never destroys the evidence it replays.
 */
export function prepareOutDir(outDir: string): string | undefined {
  let kept: string | undefined;
  if (existsSync(outDir) && readdirSync(outDir).length > 0) {
    kept = `${outDir}.${statSync(outDir).mtime.toISOString().replace(/[:.]/g, "-")}`;
    renameSync(outDir, kept);
  }
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  return kept;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new RunAborted(String(signal.reason ?? "aborted"));
}

/** Rejects with RunAborted when `signal` aborts; never settles otherwise. */
function abortion(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    if (signal === undefined) return;
    const fire = (): void => reject(new RunAborted(String(signal.reason ?? "aborted")));
    if (signal.aborted) fire();
    else signal.addEventListener("abort", fire, { once: true });
  });
}

/** A sleep that ends early when `signal` aborts. */
function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return sleep(ms);
  return new Promise((res) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal!.removeEventListener("abort", done);
      res();
    }
    if (signal.aborted) done();
    else signal.addEventListener("abort", done, { once: true });
  });
}

/** The options of a run against a started target: those of a local run but the node count, with where and how to report. */
export type TargetRunOptions = Omit<RunOptions, "nodes"> & { outDir: string; log: (line: string) => void };

/**
 * One run against a started target, writing into `o.outDir` (which must exist and be empty).
 * The caller closes the target. On abort: the workload is stopped and RunAborted is thrown.
 */
export async function runAgainst(target: ChaosTarget, o: TargetRunOptions): Promise<RunResult> {
  const state: RunState = {};
  const body = runBody(target, o, state);
  body.catch(() => {}); // after an abort the body may still fail against the closed target: nobody waits for it.
  try {
    return await Promise.race([body, abortion(o.signal)]);
  } catch (err) {
    if (err instanceof RunAborted && state.history !== undefined) {
      state.workload?.stop();
      state.history.close();
      err.partial = await writeIncompleteReport(target, o, state.history, `by ${err.reason} after ${(state.history.now() / 1000).toFixed(1)} s`);
    }
    if (err instanceof NotRecovered && state.history !== undefined) {
      const why = `the cluster did not recover after healing: ${err.message}`;
      return writeIncompleteReport(target, o, state.history, `after ${(state.history.now() / 1000).toFixed(1)} s`, why);
    }
    throw err;
  } finally {
    state.workload?.stop();
    state.history?.close();
  }
}

/** What an abort finds of a run in progress. */
interface RunState {
  workload?: Workload;
  history?: HistoryWriter;
}

/** The workload's shape from the options, defaults filled in. */
function workloadShape(o: TargetRunOptions): WorkloadShape {
  return { clients: o.clients ?? 4, users: o.users ?? 6, guessLimit: o.guessLimit ?? 5 };
}

/** run.json: what recheck needs to judge the run again (and, once interrupted, that it was). */
function writeRunJson(o: TargetRunOptions, nodes: number, ending: { interrupted?: string; notRecovered?: string | undefined } = {}): void {
  const run = { seed: o.seed, nodes, durationS: o.durationS, workload: workloadShape(o), ...(o.replay === undefined ? {} : { replay: o.replay }), ...ending };
  writeFileSync(join(o.outDir, "run.json"), `${JSON.stringify(run)}\n`);
}

/**
 * The report of a run that ended without a final state (interrupted, or `notRecovered`: a cluster that did
 * not recover after healing, a violation): the history as written so far, judged by the checkers that need
 * no final state; run.json says why (`interrupted`, `notRecovered`), and recheck judges it the same way.
 */
async function writeIncompleteReport(target: ChaosTarget, o: TargetRunOptions, history: HistoryWriter, interrupted: string, notRecovered?: string): Promise<RunResult> {
  const events = [...history.events];
  const logs = await target.logs().catch(() => new Map<number, string>());
  const results = [...checkHistoryOnly({ events, logs, guessLimit: workloadShape(o).guessLimit }), ...(notRecovered === undefined ? [] : [checkRecovered(notRecovered)])];
  writeRunJson(o, target.ids.length, { interrupted, notRecovered });
  const summary = writeReport(o.outDir, { seed: o.seed, nodes: target.ids.length, durationS: o.durationS, workload: workloadShape(o), events, results, leaders: leadersByTerm(logs), replay: o.replay, outDir: o.outDir, interrupted });
  return { faults: faultCount(events), violations: violationCount(results), outDir: o.outDir, summary };
}

async function runBody(target: ChaosTarget, o: TargetRunOptions, state: RunState): Promise<RunResult> {
  const { outDir, log, signal } = o;
  const shape = workloadShape(o);
  const guessLimit = shape.guessLimit;
  const descriptor = await target.descriptor();
  // Time 0 of the history (and of the schedule) is the start of the workload.
  const history = (state.history = new HistoryWriter(join(outDir, "history.jsonl")));
  const users = Array.from({ length: shape.users }, (_, i) => `user-${i + 1}`);
  const recoveryStarts = new Signal();
  const workload = (state.workload = new Workload({
    descriptor, token: target.token, clients: shape.clients, users, guessLimit, seed: o.seed, history, nodes: target.ids,
    readNode: (node, user) => target.readRecord(node, user),
    onRecoveryStart: (user) => recoveryStarts.emit(user),
  }));
  const executor = makeExecutor(target, recoveryStarts, signal);
  writeRunJson(o, target.ids.length);
  const schedule = generateSchedule({ seed: o.seed, nodes: target.ids, durationMs: o.durationS * 1000, kinds: target.faultKinds });
  writeFileSync(join(outDir, "schedule.json"), JSON.stringify(schedule, null, 1));
  log(`workload and nemesis for ${o.durationS} s against ${target.name} (${schedule.length} faults scheduled; kinds: ${target.faultKinds.join(", ")})`);
  const running = workload.run();
  const deadline = Date.now() + o.durationS * 1000;
  await runSchedule(executor, schedule, history, o.seed, () => Date.now() >= deadline || signal?.aborted === true);
  const left = deadline - Date.now();
  if (left > 0) await abortableSleep(left, signal);
  workload.stop();
  await running;
  throwIfAborted(signal);
  const note = target.progressNote?.();
  log(`healing and collecting the final state${note ? ` (${note})` : ""}`);
  await target.restoreAll();
  const final = await collectFinalState(target, workload, history, workload.users, o.recoverTimeoutMs ?? 60_000).catch((err: unknown) => {
    throw new NotRecovered(err instanceof Error ? err.message : String(err));
  });
  history.close();
  const logs = await target.logs();
  const results = checkAll({ events: history.events, final, logs, guessLimit });
  writeFileSync(join(outDir, "final-state.json"), JSON.stringify(final, null, 1));
  const summary = writeReport(outDir, { seed: o.seed, nodes: target.ids.length, durationS: o.durationS, workload: shape, events: history.events, results, leaders: leadersByTerm(logs), replay: o.replay, outDir });
  return { faults: faultCount(history.events), violations: violationCount(results), outDir, summary };
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

/** Delay after the begin is seen committed, per phase (approximate: the client's steps take a few ms each). */
const PHASE_DELAY_MS: Record<RecoveryPhase, number> = { "after-begin": 0, "between-evaluations": 3, "before-confirm": 15 };

function makeExecutor(target: ChaosTarget, recoveryStarts: Signal, signal: AbortSignal | undefined): NemesisExecutor {
  return {
    ...target.faults,
    nodes: target.ids,
    leader: () => target.leader(),
    waitRecoveryPhase: async (phase, timeoutMs) => {
      const user = await recoveryStarts.next(timeoutMs);
      if (user === undefined) return undefined;
      const lead = await target.leader();
      if (lead === undefined) return user;
      const before = await target.readRecord(lead, user).catch(() => null);
      if (before === null) return user;
      // The begin is committed when the leader's counter for the user moves.
      await waitFor(async () => {
        const now = await target.readRecord(lead, user);
        return now === null || now.attemptsRemaining !== before.attemptsRemaining || now.appliedIndex > before.appliedIndex + 50 ? true : undefined;
      }, "the recovery's begin", 3000).catch(() => undefined);
      await sleep(PHASE_DELAY_MS[phase]);
      return user;
    },
    sleep: (ms) => abortableSleep(ms, signal),
  };
}

async function readFinalRecords(target: ChaosTarget, lead: number, users: readonly string[]): Promise<Record<string, FinalRecord | null>> {
  const records: Record<string, FinalRecord | null> = {};
  for (const u of users) {
    const r = await target.readRecord(lead, u);
    records[u] = r === null ? null : { version: r.version, attemptsRemaining: r.attemptsRemaining, locked: r.locked };
  }
  return records;
}

async function collectFinalState(target: ChaosTarget, workload: Workload, history: HistoryWriter, users: string[], recoverTimeoutMs: number): Promise<FinalState> {
  await target.waitReady(recoverTimeoutMs);
  await waitConverged(target);
  const lead = await target.waitReady(30_000);
  const first = await readFinalRecords(target, lead, users);
  const finalRecoveries = await finalRecover(await target.descriptor(), target.token, workload, first);
  await waitConverged(target);
  const records = await readFinalRecords(target, lead, users);
  const nodes = await collectDigests(target);
  for (const n of nodes) history.append({ type: "node-state", node: n.node, appliedIndex: n.appliedIndex, digest: n.digest, time: history.now() });
  const exits = target.unexpectedExits?.();
  return { nodes, records, finalRecoveries, ...(exits === undefined ? {} : { unexpectedExits: exits }) };
}

/**
 * Every node's vault state digest. The digests are taken one node at a time, so
 * an entry committed in between (a new leader's empty entry) can put them at
 * different indexes: then converge and ask again (a few times) before handing
 * the checker digests at different indexes, which it reports as not converged.
 */
async function collectDigests(target: ChaosTarget): Promise<FinalState["nodes"]> {
  type NodeDigest = FinalState["nodes"][number];
  let nodes: NodeDigest[] = [];
  for (let round = 0; round < 5; round++) {
    nodes = [];
    for (const id of target.ids) {
      const st = await target.status(id, 10_000, true);
      if (st.stateDigest === undefined) throw new Error(`node ${id} answered no state digest (a bkv-node older than the harness?)`);
      nodes.push({ node: id, appliedIndex: st.stateDigest.index, digest: st.stateDigest.digest });
    }
    if (new Set(nodes.map((n) => n.appliedIndex)).size === 1) break;
    await waitConverged(target);
  }
  return nodes;
}

/** Waits until every node applied the same index (the leader's commit index). */
async function waitConverged(target: ChaosTarget): Promise<void> {
  await waitFor(async () => {
    const sts = await Promise.all(target.ids.map((id) => target.status(id)));
    const idx = new Set(sts.map((s) => s.appliedIndex));
    const commit = Math.max(...sts.map((s) => s.commitIndex));
    return idx.size === 1 && [...idx][0]! >= commit ? true : undefined;
  }, "all nodes to apply the same index", 60_000).catch(() => undefined);
}

/** After healing: recover every present, unlocked record with its possibly-current passwords (newest first). Recorded as process 0. */
async function finalRecover(descriptor: ClusterDescriptor, token: TokenProvider | undefined, workload: Workload, records: Record<string, FinalRecord | null>): Promise<FinalState["finalRecoveries"]> {
  const out: Record<string, NonNullable<FinalState["finalRecoveries"]>[string]> = {};
  const client = new VaultClient(descriptor, clientOptions(workload.warningSink(0), token));
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
        await workload.record(0, "recover", user, { passwordCorrect: true, ...workload.passwordTag(pw) }, async () => {
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
