// Benchmark: the vault snapshot at scale, in memory (MemoryStore) — import
// of a streamed snapshot (format 4) with a full request-id table, encoding,
// the state digest of GetClusterStatus, and the string decoding of
// proto/crypto's Reader. The disk store's figures are bench:scale's.
//
//   npx tsx bench/snapshot.ts [--records 100000] [--requests 100000] [--runs 3]
//
// The state is built directly (not by applying commands: 100k registrations
// would take minutes of point checks): one real registration cloned under
// distinct user ids, some with pending attempts, some locked, and a request
// table of begin outcomes and refusals with messages, as after a busy day.
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { Reader, Writer } from "../proto/crypto/index.js";
import { MemoryStore, NO_THROTTLE, VaultStateMachine, encodeResult, vaultError } from "../node/vault/index.js";
import { RequestTable, fingerprint } from "../node/vault/dedupe.js";
import { type StoredRecord, freshRecord } from "../node/vault/records.js";
import { StoreState } from "../node/vault/state.js";
import { CLUSTER, blindedPoint, register } from "../testkit/vault.js";
import { type Sample, measure } from "./sample.js";

const { values: args } = parseArgs({
  options: {
    records: { type: "string", default: "100000" },
    requests: { type: "string", default: "100000" },
    runs: { type: "string", default: "3" },
  },
});
const RECORDS = Number(args.records);
const REQUESTS = Number(args.requests);
const RUNS = Number(args.runs);

function buildState(records: number, requests: number): VaultStateMachine {
  const base = register("bench-user-000000").record;
  const blinded = blindedPoint(7);
  const store = new MemoryStore();
  const state = StoreState.create(store, { clusterId: CLUSTER, clusterCa: null, requestIdCapacity: Math.max(1, requests), throttle: NO_THROTTLE, boundSharesOnly: true });
  state.setMetaU64("applied", (state.appliedIndex = records + requests + 10));
  for (let i = 0; i < records; i++) {
    const user = `bench-user-${String(i).padStart(6, "0")}`;
    let s: StoredRecord = freshRecord({ ...base, user });
    if (i % 10 === 1) s = { ...s, attempts: 1, pending: [{ attemptId: i + 2, blinded }] };
    if (i % 100 === 2) s = { record: { ...s.record, shares: [] }, digest: s.digest, encoded: null, attempts: s.record.guessLimit, locked: true, pending: [], confirmedAt: 0, lastBeginAt: 0 };
    state.setRecord(user, undefined, s);
  }
  const table = new RequestTable(state);
  for (let i = 0; i < requests; i++) {
    const requestId = new Uint8Array(16);
    new DataView(requestId.buffer).setUint32(12, i);
    const outcome = i % 2 === 0
      ? encodeResult({ ok: true, kind: "begin", attemptId: i + 2, attemptsRemaining: 9, version: 1 })
      : encodeResult(vaultError("RECORD_NOT_FOUND", `user "bench-user-${String(i).padStart(6, "0")}" has no record`));
    table.add(requestId, fingerprint(requestId), outcome, i + 1);
  }
  state.flush();
  return new VaultStateMachine({ clusterId: CLUSTER, store });
}

/** Decodes `n` lp16 strings of about 40 bytes with Reader.str. */
function strDecodeMs(n: number): Sample {
  const w = new Writer();
  for (let i = 0; i < n; i++) w.str(`user "bench-user-${String(i).padStart(6, "0")}" has no record`);
  const bytes = w.bytes();
  return measure(RUNS, () => {
    const r = new Reader(bytes, "bench");
    for (let i = 0; i < n; i++) r.str();
    r.end();
  });
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));
console.log(`Machine: ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);

const requestsOnly = buildState(0, REQUESTS).snapshot();
const sm = buildState(RECORDS, REQUESTS);
const full = sm.snapshot();

const rows: Array<[string, Sample]> = [
  [`Reader.str, ${REQUESTS.toLocaleString("en")} strings`, strDecodeMs(REQUESTS)],
  [`restore, ${REQUESTS.toLocaleString("en")} request ids, no records (${(requestsOnly.length / 2 ** 20).toFixed(1)} MiB)`, measure(RUNS, () => VaultStateMachine.restore({ clusterId: CLUSTER }, requestsOnly))],
  [`restore, ${RECORDS.toLocaleString("en")} records + ${REQUESTS.toLocaleString("en")} request ids (${(full.length / 2 ** 20).toFixed(1)} MiB)`, measure(1, () => VaultStateMachine.restore({ clusterId: CLUSTER }, full))],
  ["snapshot() of that state", measure(RUNS, () => sm.snapshot())],
  ["state digest of that state (kept incrementally)", measure(RUNS, () => sm.digest())],
  ["stats() of that state", measure(RUNS, () => sm.stats())],
];
console.log(`\n| operation, median of ${RUNS} runs | wall ms | CPU ms |\n|---|---:|---:|`);
for (const [name, s] of rows) console.log(`| ${name} | ${fmt(s.wall)} | ${fmt(s.cpu)} |`);
