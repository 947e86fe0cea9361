// When an e2e test fails, the last lines of each node's log go to stderr
// (and so into CI's output), prefixed "# bkv-log " so that .ci/run can
// repeat them at the end of its output beside the failures. Clusters still
// open at the failure are read then; a cluster a test closed in its own
// `finally` left its tails here at close().
import type { TestFn } from "ava";

/** What failure-logs needs of a cluster: its nodes' ids and logs. */
export interface LoggedCluster {
  readonly nodes: ReadonlyArray<{ readonly id: number }>;
  logOf(id: number): string;
}

const LINES_PER_NODE = 12;
const MAX_LINE_CHARS = 400;
const open = new Set<LoggedCluster>();
let closedTails: string[] = [];

export function clusterOpened(c: LoggedCluster): void {
  open.add(c);
}

/** Called before a cluster's dir is removed: keeps its tails until the current test ends. */
export function clusterClosing(c: LoggedCluster): void {
  if (!open.delete(c)) return;
  closedTails = [...closedTails, ...tailsOf(c)].slice(-8 * LINES_PER_NODE);
}

function tailsOf(c: LoggedCluster): string[] {
  return c.nodes.flatMap((n) => {
    let log: string;
    try {
      log = c.logOf(n.id);
    } catch {
      return [];
    }
    const lines = log.trimEnd().split("\n").slice(-LINES_PER_NODE);
    return lines.map((l) => `node ${n.id}: ${l.length > MAX_LINE_CHARS ? `${l.slice(0, MAX_LINE_CHARS)}…` : l}`);
  });
}

/** Registers the hook in a test file: after a failed test, its clusters' log tails on stderr. */
export function reportLogsOnFailure(test: TestFn): void {
  test.afterEach.always((t) => {
    const tails = t.passed ? [] : [...closedTails, ...[...open].flatMap(tailsOf)];
    closedTails = [];
    if (tails.length === 0) return;
    process.stderr.write(`# bkv-log after "${t.title}" failed:\n${tails.map((l) => `# bkv-log ${l}`).join("\n")}\n`);
  });
}
