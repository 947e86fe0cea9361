// The environment of a bkv-node process started by the test and benchmark
// clusters (testkit/cluster.ts, chaos/cluster.ts, test/deploy): the caller's,
// with the settings a deployed node runs with.

/** What the container image sets (deploy/Dockerfile): two malloc arenas (docs/operations.md). */
export const NODE_MALLOC_ARENA_MAX = "2";

/**
 * The environment of node `id`: the caller's `base`, less BKV_HSM_PIN (a
 * node reads its own token's PIN from its pinFile); MALLOC_ARENA_MAX=2
 * unless `base` sets it; then the variables of BKV_E2E_NODE_ENV_<id>
 * ("NAME=value NAME=value", values without spaces) for that node alone,
 * e.g. heaptrack's LD_PRELOAD and DUMP_HEAPTRACK_OUTPUT to profile one node.
 */
export function nodeEnv(id: number, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { MALLOC_ARENA_MAX: NODE_MALLOC_ARENA_MAX, ...base };
  delete env.BKV_HSM_PIN;
  return { ...env, ...parseAssignments(base[`BKV_E2E_NODE_ENV_${id}`] ?? "") };
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
