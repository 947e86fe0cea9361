// The environment of a bkv-node process started by the test and benchmark
// clusters (testkit/cluster.ts, chaos/cluster.ts, test/deploy): the caller's,
// with the settings a deployed node runs with.

/** What the container image sets (deploy/Dockerfile): two malloc arenas (docs/operations.md). */
export const NODE_MALLOC_ARENA_MAX = "2";

/**
 * The V8 heap limit the container image sets (deploy/Dockerfile, NODE_OPTIONS):
 * what Node 20 derives by itself inside the StatefulSet's 512 MiB memory limit,
 * made explicit, so that a node on a large host (tests, benchmarks, `npm
 * start`) sizes its heap as in a pod and not from the host's RAM (docs/operations.md, "Memory").
 */
export const NODE_HEAP_OPTION = "--max-old-space-size=256";

/**
 * V8 flags a node is started with on its command line (Node refuses them in
 * NODE_OPTIONS), as the container image's ENTRYPOINT and `npm start` do:
 * the old generation may grow to 4x its live size between full collections,
 * the factor V8 picks by itself only for heap limits of 2 GiB and more (1.3x
 * at 256 MiB, which made a committed call cost 15-20% more CPU;
 * docs/operations.md, "Memory"). The heap limit still bounds it.
 */
export const NODE_V8_FLAGS: readonly string[] = ["--heap-growing-percent=300"];

/**
 * Admission limits and connection caps of test and chaos clusters: never
 * reached by tests, benchmarks or chaos runs that do not set their own
 * (every client is 127.0.0.1; chaos checks the vault's guarantees, not the
 * quotas). Connections: 10,000, so that a node with them stays inside a
 * 20,000 open-file limit (node/server/open-files.ts).
 */
export const UNREACHED_LIMITS = {
  userPerSec: 100_000, userBurst: 100_000, addressPerSec: 100_000, addressBurst: 100_000, maxConnections: 10_000, maxConnectionsPerAddress: 10_000, connectsPerSecPerAddress: 100_000,
} as const;

/**
 * The environment of node `id`: the caller's `base`, less BKV_HSM_PIN (a
 * node reads its own token's PIN from its pinFile); MALLOC_ARENA_MAX=2
 * unless `base` sets it; NODE_HEAP_OPTION added to NODE_OPTIONS unless that
 * names a heap limit already; then the variables of BKV_E2E_NODE_ENV_<id>
 * ("NAME=value NAME=value", values without spaces) for that node alone,
 * e.g. heaptrack's LD_PRELOAD and DUMP_HEAPTRACK_OUTPUT to profile one node.
 */
export function nodeEnv(id: number, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { MALLOC_ARENA_MAX: NODE_MALLOC_ARENA_MAX, ...base, NODE_OPTIONS: withHeapLimit(base.NODE_OPTIONS) };
  delete env.BKV_HSM_PIN;
  return { ...env, ...parseAssignments(base[`BKV_E2E_NODE_ENV_${id}`] ?? "") };
}

function withHeapLimit(options = ""): string {
  return /--max[-_]old[-_]space[-_]size/.test(options) ? options : `${options} ${NODE_HEAP_OPTION}`.trim();
}

/** "A=1 B=2" as { A: "1", B: "2" }; a word without "=" or with an empty name is an error. */
export function parseAssignments(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const word of text.split(" ").filter((w) => w !== "")) {
    const eq = word.indexOf("=");
    if (eq <= 0) throw new Error(`not NAME=value: ${JSON.stringify(word)}`);
    out[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return out;
}
