// deploy/dashboards/bkv.json: every series it queries is one bkv-node exports
// (node/server/metrics.ts, or prom-client's default metrics), and every bkv
// metric is on the dashboard.
import test from "ava";
import { readFileSync } from "node:fs";
import { Registry, collectDefaultMetrics } from "prom-client";

interface Panel { id: number; type: string; title: string; targets?: Array<{ expr: string }> }
const dashboard = JSON.parse(readFileSync("deploy/dashboards/bkv.json", "utf8")) as { uid: string; panels: Panel[] };

/** Metric names exported by node/server/metrics.ts, read from its source. */
function bkvMetricNames(): Set<string> {
  const src = readFileSync("node/server/metrics.ts", "utf8");
  return new Set([...src.matchAll(/name: "(bkv_[a-z_]+)"|(?:gauge|counter)\("(bkv_[a-z_]+)"/gi)].map((m) => (m[1] ?? m[2]) as string));
}

async function defaultMetricNames(): Promise<Set<string>> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
}

/** Metric names used in PromQL: identifiers followed by a selector, minus histogram suffixes. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b([a-z_][a-z0-9_]*)\{/g)].map((m) => (m[1] as string).replace(/_(bucket|count|sum)$/, ""));
}

test("metricsIn finds selectors and strips histogram suffixes", (t) => {
  t.deepEqual(metricsIn('histogram_quantile(0.5, sum by (le) (rate(bkv_apply_seconds_bucket{a="b"}[5m])))'), ["bkv_apply_seconds"]);
  t.deepEqual(metricsIn("max(x{}) - y{z=\"1\"}"), ["x", "y"]);
});

test("every query uses a metric bkv-node exports, and every bkv metric is shown", async (t) => {
  const bkv = bkvMetricNames();
  t.true(bkv.size >= 12, `metrics.ts parsed: ${[...bkv].join(", ")}`);
  const known = new Set([...bkv, ...(await defaultMetricNames())]);
  const used = new Set<string>();
  for (const p of dashboard.panels) {
    for (const target of p.targets ?? []) {
      const names = metricsIn(target.expr);
      t.true(names.length > 0, `${p.title}: ${target.expr}`);
      for (const name of names) {
        t.true(known.has(name), `${p.title}: unknown metric ${name}`);
        used.add(name);
      }
    }
  }
  t.deepEqual([...bkv].filter((m) => !used.has(m)), []);
});

test("panel ids are unique and every non-row panel has a query", (t) => {
  const ids = dashboard.panels.map((p) => p.id);
  t.is(new Set(ids).size, ids.length);
  t.is(dashboard.uid, "bkv-overview");
  for (const p of dashboard.panels.filter((x) => x.type !== "row")) t.true((p.targets ?? []).length > 0, p.title);
});
