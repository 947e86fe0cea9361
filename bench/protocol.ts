// Client-side CPU cost of one registration (3 nodes, t=2) and one recovery,
// excluding network and node work (node evaluations are computed outside the
// timed region). Run: npx tsx bench/protocol.ts   (about 15-30 s)
import { cpus, loadavg, totalmem } from "node:os";
import { randomBytes } from "node:crypto";
import {
  DEFAULT_SCRYPT,
  type NodeEvaluation,
  type RegistrationRecord,
  type ScryptParams,
  createRegistration,
  encodePoint,
  finishRecovery,
  hardenPassword,
  startRecovery,
} from "../proto/crypto/index.js";
import { evaluateAsNode, makeNodes, randomPoint } from "../testkit/protocol.js";
import { type Sample, measure, measureOnce, medianSample } from "./sample.js";

const MIN_SCRYPT: ScryptParams = { N: 1 << 10, r: 8, p: 1 };
const nodes = makeNodes([1, 2, 3]);
const user = "bench-user";
const password = "correct horse battery staple";

function register(scrypt: ScryptParams): RegistrationRecord {
  const backupKey = new Uint8Array(randomBytes(32));
  return createRegistration({ clusterId: "bench", user, password, backupKey, threshold: 2, guessLimit: 10, nodes, scrypt }).record;
}

/** One recovery, timing only the client's work: start, then finish with `answers` evaluations. */
function recoveryCost(scrypt: ScryptParams, answers: number, faulty: boolean, runs: number): Sample {
  const record = register(scrypt);
  const samples: Sample[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const start = measureOnce(() => startRecovery(password, record));
    const evs: NodeEvaluation[] = nodes.slice(0, answers).map((n) => ({ nodeId: n.id, point: encodePoint(evaluateAsNode(n, record, start.value.blinded)) }));
    if (faulty) evs[0] = { nodeId: nodes[0]!.id, point: encodePoint(randomPoint()) };
    const finish = measureOnce(() => finishRecovery(start.value.state, record, evs));
    if (i > 0) samples.push({ wall: start.wall + finish.wall, cpu: start.cpu + finish.cpu });
  }
  return medianSample(samples);
}

const salt = new Uint8Array(16);
const scryptDefault = measure(5, () => hardenPassword(password, salt, DEFAULT_SCRYPT));
const scryptMin = measure(9, () => hardenPassword(password, salt, MIN_SCRYPT));
const regDefault = measure(5, () => register(DEFAULT_SCRYPT));
const regMin = measure(9, () => register(MIN_SCRYPT));
const recDefault = recoveryCost(DEFAULT_SCRYPT, 2, false, 5);
const recMin = recoveryCost(MIN_SCRYPT, 2, false, 9);
const recMinT1 = recoveryCost(MIN_SCRYPT, 3, false, 9);
const recMinFaulty = recoveryCost(MIN_SCRYPT, 3, true, 9);

const fmt = (x: number) => x.toFixed(1);
const { N, r, p } = DEFAULT_SCRYPT;
const rows: Array<[string, Sample]> = [
  [`scrypt alone, default (N=2^${Math.log2(N)}, r=${r}, p=${p}, ${(128 * N * r) >> 20} MiB)`, scryptDefault],
  ["scrypt alone, minimum (N=2^10, r=8, p=1)", scryptMin],
  ["registration (3 nodes, t=2), default scrypt", regDefault],
  ["registration, minimum scrypt", regMin],
  ["recovery (t=2 answers), default scrypt", recDefault],
  ["recovery (t=2 answers), minimum scrypt", recMin],
  ["recovery (t+1=3 answers), minimum scrypt", recMinT1],
  ["recovery (t+1=3 answers, 1 faulty), minimum scrypt", recMinFaulty],
];

const cpu = cpus()[0]?.model ?? "unknown CPU";
console.log(`Machine: ${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
console.log("Client cost per operation, median (CPU = user+system of this process; node work excluded).");
console.log("'minimum scrypt' (N=2^10) shows the protocol's own cost; subtract the scrypt row for exact figures.\n");
console.log("| operation | wall ms | CPU ms |");
console.log("|---|---:|---:|");
for (const [name, s] of rows) console.log(`| ${name} | ${fmt(s.wall)} | ${fmt(s.cpu)} |`);
