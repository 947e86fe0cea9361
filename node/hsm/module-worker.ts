// Starting a module in a worker thread from either form of the package: the
// compiled build (dist/: the module's .js), or the TypeScript sources under
// tsx, where the thread registers tsx itself (Node 20 does not apply the
// parent's --import loader to a worker's entry module). The token workers
// (worker-pool.ts) and node/server's snapshot hash threads start this way.
import { Worker, type WorkerOptions } from "node:worker_threads";

/** A worker thread running the module `name` (no extension) that sits beside `base` (the caller's import.meta.url). */
export function moduleWorker(base: string, name: string, options: WorkerOptions = {}): Worker {
  if (!base.endsWith(".ts")) return new Worker(new URL(`./${name}.js`, base), options);
  const entry = JSON.stringify(new URL(`./${name}.ts`, base).href);
  return new Worker(`import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${entry}); });`, { ...options, eval: true });
}
