// The bkv-node configuration: a JSON file plus BKV_* environment overrides.
// Validation names the offending field. The HSM PIN is never read here (only
// where it comes from: a file path or an environment variable name), so it
// can never appear in a config error or a log line.
import { readFileSync } from "node:fs";
import { isAbsolute, resolve, dirname } from "node:path";
import { DEFAULT_POOL } from "../hsm/index.js";
import { DEFAULT_THROTTLE, NO_THROTTLE, type ThrottleSchedule, validateSchedule } from "../vault/index.js";
import { DEFAULT_DOWNLOAD_LIMITS, type DownloadLimits } from "./snapshot-download.js";

export interface NodeAddress {
  readonly id: number;
  readonly clientAddress: string;
  readonly peerAddress: string;
  /** The node's admin address for other nodes and operators (not-leader hints, join); optional. */
  readonly adminAddress?: string;
}

export interface ServerConfig {
  readonly nodeId: number;
  readonly clusterId: string;
  readonly dataDir: string;
  readonly clientListen: string;
  readonly peerListen: string;
  readonly adminListen: string;
  /** Empty: no metrics endpoint. */
  readonly metricsListen: string;
  /** Default threshold t of the cluster descriptor. */
  readonly threshold: number;
  readonly hsm: {
    readonly module: string;
    readonly tokenLabel: string;
    readonly pinFile?: string;
    /** Name of the environment variable holding the PIN. */
    readonly pinEnv?: string;
    readonly softhsmConf?: string;
    readonly wrapMechanism?: number;
    /** Operations after which the PKCS#11 module is finalized and initialized again (0: never; docs/hsm.md). */
    readonly recycleAfter: number;
  };
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
  /** The initial voters (used only to bootstrap an empty data dir, and as address book). */
  readonly nodes: readonly NodeAddress[];
  readonly logLevel: LogLevel;
  /** Take a snapshot and compact every this many applied entries. */
  readonly snapshotInterval: number;
  /**
   * At most this many local snapshots keep their vault store views pinned for
   * followers to download (the newest ones; an idle view is released sooner:
   * store-snapshots.ts PIN_IDLE_MS). A pinned view keeps the pages freed
   * after it from being reused, so the store file grows while one is held.
   */
  readonly snapshotRetention: number;
  /**
   * The bounds of a snapshot download from another member (node/server/
   * snapshot-download.ts): one that waits `idleTimeoutMs` for a chunk, gets
   * under `minBytesPerSecond` while it waits, passes `maxBytes`, or would
   * leave under `diskReserveBytes` available on the data dir's file system is
   * ended and its staging deleted (docs/storage.md, "Snapshot transfer").
   */
  readonly snapshotDownload: DownloadLimits;
  readonly tickMs: number;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  /** How long a proposal waits to be applied before UNAVAILABLE. */
  readonly proposalTimeoutMs: number;
  /** How long Evaluate and a linearizable read wait for this node to apply the index they need. */
  readonly evaluateWaitMs: number;
  /**
   * True for a node added to a running cluster (AddLearner): an empty data dir
   * is NOT bootstrapped; the node waits for the leader's snapshot. `nodes`
   * then lists the existing members (to reach them) and this node.
   */
  readonly join: boolean;
  /**
   * The throttling schedule written into the state of a NEW cluster at
   * bootstrap (node/vault/throttle.ts; fixed for the cluster's life):
   * "default" (3 free attempts, then 30 s growing to 1 h), "none", or
   * { free, delaysSeconds }. Ignored once the cluster exists.
   */
  readonly throttle: ThrottleSchedule;
  /** PromoteLearner refuses a learner more than this many entries behind the leader's commit index. */
  readonly promoteMaxLag: number;
  /** Health is NOT_SERVING while commit − applied exceeds this many entries. */
  readonly maxApplyLag: number;
  /** How often the HSM is probed (one signature); a failed probe makes health NOT_SERVING. */
  readonly hsmProbeIntervalMs: number;
  /** Client authentication (node/server/auth.ts); required: a JWKS per issuer, or an explicit `disabled: true`. */
  readonly auth: AuthConfig;
  /** Admission limits of the client port (node/server/admission.ts). */
  readonly limits: LimitsConfig;
}

/**
 * Who may call the client API: bearer JWTs from these issuers (docs/
 * operations.md "Client authentication"). The issuers, their JWKS files and
 * the bounds are read when the node bootstraps a new cluster (auth.ts
 * bootstrapIssuers); afterwards every check uses the replicated state's keys.
 */
export type AuthConfig =
  | {
    readonly enabled: true;
    /** The issuers a new cluster's state starts with: each token names its issuer (`iss`) and key (`kid`). */
    readonly issuers: readonly IssuerConfig[];
    /** Tolerated clock difference for `exp`, `nbf` and `iat`, seconds. */
    readonly clockSkewSec: number;
    /** The longest accepted token lifetime (`exp` - `iat`) and age (now - `iat`), seconds. */
    readonly maxTokenLifetimeSec: number;
  }
  | { readonly enabled: false };

export interface IssuerConfig {
  readonly issuer: string;
  readonly jwksFile: string;
}

/** Token buckets per authenticated user and per client address, and the client port's HTTP/2 limits. */
export interface LimitsConfig {
  /** Sustained calls per second per user, and the extra burst allowed over BURST_WINDOW_SEC. */
  readonly userPerSec: number;
  readonly userBurst: number;
  readonly addressPerSec: number;
  readonly addressBurst: number;
  /** The largest request message the client port accepts, bytes (larger: RESOURCE_EXHAUSTED). */
  readonly maxMessageBytes: number;
  /** HTTP/2 concurrent streams per client connection on the client port. */
  readonly maxConcurrentStreams: number;
  /** Open client-port connections, in all and from one address; more are closed at accept (proto/connection-gate.ts). */
  readonly maxConnections: number;
  readonly maxConnectionsPerAddress: number;
  /** New client-port connections per second from one address (its burst: maxConnectionsPerAddress); more are closed at accept. */
  readonly connectsPerSecPerAddress: number;
}

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly field: string, why: string) {
    super(`config: ${field} ${why}`);
  }
}

const DEFAULTS = {
  metricsListen: "",
  logLevel: "info" as LogLevel,
  snapshotInterval: 10_000,
  snapshotRetention: 2,
  snapshotDownload: DEFAULT_DOWNLOAD_LIMITS,
  tickMs: 100,
  electionTick: 10,
  heartbeatTick: 1,
  proposalTimeoutMs: 5_000,
  evaluateWaitMs: 2_000,
  promoteMaxLag: 1_000,
  maxApplyLag: 5_000,
  hsmProbeIntervalMs: 10_000,
  module: "/usr/lib/softhsm/libsofthsm2.so",
  clockSkewSec: 60,
  maxTokenLifetimeSec: 3600,
  limits: {
    userPerSec: 5, userBurst: 20, addressPerSec: 100, addressBurst: 200, maxMessageBytes: 256 * 1024, maxConcurrentStreams: 100,
    maxConnections: 512, maxConnectionsPerAddress: 64, connectsPerSecPerAddress: 20,
  } satisfies LimitsConfig,
};

/** Env var → config path; applied over the file. */
const ENV: ReadonlyArray<readonly [string, string]> = [
  ["BKV_NODE_ID", "nodeId"], ["BKV_CLUSTER_ID", "clusterId"], ["BKV_DATA_DIR", "dataDir"],
  ["BKV_CLIENT_LISTEN", "clientListen"], ["BKV_PEER_LISTEN", "peerListen"], ["BKV_ADMIN_LISTEN", "adminListen"],
  ["BKV_THRESHOLD", "threshold"], ["BKV_METRICS_LISTEN", "metricsListen"], ["BKV_LOG_LEVEL", "logLevel"],
  ["BKV_SNAPSHOT_INTERVAL", "snapshotInterval"], ["BKV_SNAPSHOT_RETENTION", "snapshotRetention"], ["BKV_JOIN", "join"],
  ["BKV_SNAPSHOT_DOWNLOAD_MAX_BYTES", "snapshotDownload.maxBytes"], ["BKV_SNAPSHOT_DOWNLOAD_DISK_RESERVE_BYTES", "snapshotDownload.diskReserveBytes"],
  ["BKV_HSM_MODULE", "hsm.module"], ["BKV_HSM_TOKEN_LABEL", "hsm.tokenLabel"], ["BKV_HSM_PIN_FILE", "hsm.pinFile"],
  ["BKV_SOFTHSM2_CONF", "hsm.softhsmConf"], ["BKV_HSM_RECYCLE_AFTER", "hsm.recycleAfter"],
  ["BKV_TLS_CA", "tls.ca"], ["BKV_TLS_CERT", "tls.cert"], ["BKV_TLS_KEY", "tls.key"],
];
/** The variable that holds the HSM PIN itself (the config names it in hsm.pinEnv); never a config value. */
const PIN_ENV = "BKV_HSM_PIN";
/** Every BKV_* variable bkv-node reads (the overrides above and the PIN itself); any other is ignored. */
export const CONFIG_ENV_VARIABLES: readonly string[] = [...ENV.map(([name]) => name), PIN_ENV];
const NUMERIC = new Set([
  "nodeId", "threshold", "snapshotInterval", "snapshotRetention", "hsm.recycleAfter", "snapshotDownload.maxBytes", "snapshotDownload.diskReserveBytes",
]);

/** Reads FILE (may be undefined: env only), applies env overrides, validates. */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  let raw: Record<string, unknown> = {};
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new ConfigError("file", `${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    }
    try {
      raw = obj(JSON.parse(text), "file");
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError("file", `${file} is not JSON: ${(err as Error).message}`);
    }
  }
  applyEnv(raw, env);
  return validate(raw, file === undefined ? process.cwd() : dirname(resolve(file)));
}

function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  for (const [name, path] of ENV) {
    const v = env[name];
    if (v === undefined || v === "") continue;
    const [a, b] = path.split(".") as [string, string | undefined];
    const value: unknown = NUMERIC.has(path) ? envInteger(name, v) : path === "join" ? v === "1" || v === "true" : v;
    if (b === undefined) raw[a] = value;
    else raw[a] = { ...(raw[a] as object | undefined), [b]: value };
  }
  // BKV_HSM_PIN: the PIN itself in the environment; the config only names the variable.
  if (env[PIN_ENV] !== undefined && env.BKV_HSM_PIN_FILE === undefined) {
    const hsm = { ...(raw.hsm as object | undefined) } as Record<string, unknown>;
    delete hsm.pinFile;
    raw.hsm = { ...hsm, pinEnv: PIN_ENV };
  }
}

/** A numeric variable's value; a ConfigError naming the variable when it is not an integer. */
function envInteger(name: string, v: string): number {
  if (!/^-?\d+$/.test(v.trim())) throw new ConfigError(name, `must be an integer (got ${JSON.stringify(v)})`);
  return Number(v);
}

export function validate(raw: Record<string, unknown>, baseDir: string): ServerConfig {
  const path = (v: string) => (isAbsolute(v) ? v : resolve(baseDir, v));
  knownKeys(raw, TOP_LEVEL_KEYS, "");
  const nodeId = posInt(raw.nodeId, "nodeId");
  const nodes = nodeList(raw.nodes);
  if (!nodes.some((n) => n.id === nodeId)) throw new ConfigError("nodes", `must list this node (id ${nodeId})`);
  const threshold = posInt(raw.threshold ?? Math.floor(nodes.length / 2) + 1, "threshold");
  if (threshold > nodes.length) throw new ConfigError("threshold", `must be at most the number of nodes (${nodes.length})`);
  const hsm = knownKeys(obj(raw.hsm, "hsm"), HSM_KEYS, "hsm");
  if ((hsm.pinFile === undefined) === (hsm.pinEnv === undefined)) {
    throw new ConfigError("hsm", "needs exactly one of pinFile (BKV_HSM_PIN_FILE) and the BKV_HSM_PIN environment variable");
  }
  const tls = knownKeys(obj(raw.tls, "tls"), ["ca", "cert", "key"], "tls");
  const logLevel = (raw.logLevel ?? DEFAULTS.logLevel) as LogLevel;
  if (!LEVELS.includes(logLevel)) throw new ConfigError("logLevel", `must be one of ${LEVELS.join(", ")}`);
  const raft = raftTiming(raw);
  return {
    nodeId, threshold, nodes, logLevel, ...raft,
    clusterId: str(raw.clusterId, "clusterId"),
    dataDir: path(str(raw.dataDir, "dataDir")),
    clientListen: hostPort(raw.clientListen, "clientListen"),
    peerListen: hostPort(raw.peerListen, "peerListen"),
    adminListen: hostPort(raw.adminListen, "adminListen"),
    metricsListen: raw.metricsListen === undefined || raw.metricsListen === "" ? "" : hostPort(raw.metricsListen, "metricsListen"),
    hsm: {
      module: str(hsm.module ?? DEFAULTS.module, "hsm.module"),
      tokenLabel: str(hsm.tokenLabel, "hsm.tokenLabel"),
      ...(hsm.pinFile !== undefined ? { pinFile: path(str(hsm.pinFile, "hsm.pinFile")) } : {}),
      ...(hsm.pinEnv !== undefined ? { pinEnv: str(hsm.pinEnv, "hsm.pinEnv") } : {}),
      ...(hsm.softhsmConf !== undefined ? { softhsmConf: path(str(hsm.softhsmConf, "hsm.softhsmConf")) } : {}),
      ...(hsm.wrapMechanism !== undefined ? { wrapMechanism: posInt(hsm.wrapMechanism, "hsm.wrapMechanism") } : {}),
      recycleAfter: nonNegInt(hsm.recycleAfter ?? DEFAULT_POOL.recycleAfter, "hsm.recycleAfter"),
    },
    tls: { ca: path(str(tls.ca, "tls.ca")), cert: path(str(tls.cert, "tls.cert")), key: path(str(tls.key, "tls.key")) },
    snapshotInterval: posInt(raw.snapshotInterval ?? DEFAULTS.snapshotInterval, "snapshotInterval"),
    snapshotRetention: posInt(raw.snapshotRetention ?? DEFAULTS.snapshotRetention, "snapshotRetention"),
    snapshotDownload: snapshotDownload(raw.snapshotDownload ?? {}),
    proposalTimeoutMs: posInt(raw.proposalTimeoutMs ?? DEFAULTS.proposalTimeoutMs, "proposalTimeoutMs"),
    evaluateWaitMs: posInt(raw.evaluateWaitMs ?? DEFAULTS.evaluateWaitMs, "evaluateWaitMs"),
    join: bool(raw.join ?? false, "join"),
    throttle: throttleSchedule(raw.throttle ?? "default"),
    promoteMaxLag: nonNegInt(raw.promoteMaxLag ?? DEFAULTS.promoteMaxLag, "promoteMaxLag"),
    maxApplyLag: posInt(raw.maxApplyLag ?? DEFAULTS.maxApplyLag, "maxApplyLag"),
    hsmProbeIntervalMs: posInt(raw.hsmProbeIntervalMs ?? DEFAULTS.hsmProbeIntervalMs, "hsmProbeIntervalMs"),
    auth: authConfig(raw.auth, path),
    limits: limitsConfig(raw.limits ?? {}),
  };
}

/** tickMs, electionTick and heartbeatTick; Raft needs the election timeout longer than the heartbeat. */
function raftTiming(raw: Record<string, unknown>): { tickMs: number; electionTick: number; heartbeatTick: number } {
  const electionTick = posInt(raw.electionTick ?? DEFAULTS.electionTick, "electionTick");
  const heartbeatTick = posInt(raw.heartbeatTick ?? DEFAULTS.heartbeatTick, "heartbeatTick");
  if (electionTick <= heartbeatTick) throw new ConfigError("electionTick", `must be greater than heartbeatTick (${heartbeatTick}; got ${electionTick})`);
  return { tickMs: posInt(raw.tickMs ?? DEFAULTS.tickMs, "tickMs"), electionTick, heartbeatTick };
}

function throttleSchedule(v: unknown): ThrottleSchedule {
  if (v === "default") return DEFAULT_THROTTLE;
  if (v === "none") return NO_THROTTLE;
  const o = knownKeys(obj(v, "throttle"), ["free", "delaysSeconds"], "throttle");
  const delays = o.delaysSeconds;
  if (!Array.isArray(delays) || !delays.every((d) => typeof d === "number")) throw new ConfigError("throttle.delaysSeconds", "must be an array of seconds");
  const s = { free: typeof o.free === "number" ? o.free : -1, delaysMs: delays.map((d: number) => d * 1000) };
  try {
    validateSchedule(s);
  } catch (err) {
    throw new ConfigError("throttle", `must be "default", "none" or { free, delaysSeconds }: ${(err as Error).message}`);
  }
  return s;
}

/** `auth` is required: on with issuers, or off only by an explicit `disabled: true` (never by omission). */
function authConfig(v: unknown, path: (p: string) => string): AuthConfig {
  if (v === undefined) {
    throw new ConfigError("auth", "is required: { issuers: [{ issuer, jwksFile }] } (client authentication), or { disabled: true } for local tests only");
  }
  const a = knownKeys(obj(v, "auth"), ["disabled", "issuers", "clockSkewSec", "maxTokenLifetimeSec"], "auth");
  if (a.disabled !== undefined && bool(a.disabled, "auth.disabled")) {
    if (a.issuers !== undefined) throw new ConfigError("auth", "sets both disabled: true and issuers");
    return { enabled: false };
  }
  if (!Array.isArray(a.issuers) || a.issuers.length === 0) throw new ConfigError("auth.issuers", "must be a non-empty array of { issuer, jwksFile }");
  const seen = new Set<string>();
  const issuers = a.issuers.map((x, i) => {
    const o = knownKeys(obj(x, `auth.issuers[${i}]`), ["issuer", "jwksFile"], `auth.issuers[${i}]`);
    const issuer = str(o.issuer, `auth.issuers[${i}].issuer`);
    if (seen.has(issuer)) throw new ConfigError(`auth.issuers[${i}].issuer`, `duplicates issuer ${JSON.stringify(issuer)}`);
    seen.add(issuer);
    return { issuer, jwksFile: path(str(o.jwksFile, `auth.issuers[${i}].jwksFile`)) };
  });
  return {
    enabled: true, issuers,
    clockSkewSec: nonNegInt(a.clockSkewSec ?? DEFAULTS.clockSkewSec, "auth.clockSkewSec"),
    maxTokenLifetimeSec: posInt(a.maxTokenLifetimeSec ?? DEFAULTS.maxTokenLifetimeSec, "auth.maxTokenLifetimeSec"),
  };
}

function limitsConfig(v: unknown): LimitsConfig {
  const o = knownKeys(obj(v, "limits"), Object.keys(DEFAULTS.limits), "limits");
  const field = (k: keyof LimitsConfig) => posInt(o[k] ?? DEFAULTS.limits[k], `limits.${k}`);
  return {
    userPerSec: field("userPerSec"), userBurst: field("userBurst"), addressPerSec: field("addressPerSec"), addressBurst: field("addressBurst"),
    maxMessageBytes: field("maxMessageBytes"), maxConcurrentStreams: field("maxConcurrentStreams"),
    maxConnections: field("maxConnections"), maxConnectionsPerAddress: field("maxConnectionsPerAddress"),
    connectsPerSecPerAddress: field("connectsPerSecPerAddress"),
  };
}

function snapshotDownload(v: unknown): DownloadLimits {
  const o = knownKeys(obj(v, "snapshotDownload"), Object.keys(DEFAULTS.snapshotDownload), "snapshotDownload");
  const field = (k: keyof DownloadLimits, check: typeof posInt) => check(o[k] ?? DEFAULTS.snapshotDownload[k], `snapshotDownload.${k}`);
  return {
    idleTimeoutMs: field("idleTimeoutMs", posInt), minBytesPerSecond: field("minBytesPerSecond", nonNegInt),
    maxBytes: field("maxBytes", posInt), diskReserveBytes: field("diskReserveBytes", nonNegInt),
  };
}

function nodeList(v: unknown): NodeAddress[] {
  if (!Array.isArray(v) || v.length === 0) throw new ConfigError("nodes", "must be a non-empty array of {id, clientAddress, peerAddress}");
  const seen = new Set<number>();
  return v.map((n, i) => {
    const o = knownKeys(obj(n, `nodes[${i}]`), ["id", "clientAddress", "peerAddress", "adminAddress"], `nodes[${i}]`);
    const id = posInt(o.id, `nodes[${i}].id`);
    if (seen.has(id)) throw new ConfigError(`nodes[${i}].id`, `duplicates node id ${id}`);
    seen.add(id);
    const admin = o.adminAddress === undefined ? {} : { adminAddress: hostPort(o.adminAddress, `nodes[${i}].adminAddress`) };
    return { id, clientAddress: hostPort(o.clientAddress, `nodes[${i}].clientAddress`), peerAddress: hostPort(o.peerAddress, `nodes[${i}].peerAddress`), ...admin };
  });
}

const TOP_LEVEL_KEYS = [
  "nodeId", "clusterId", "dataDir", "clientListen", "peerListen", "adminListen", "metricsListen", "threshold", "hsm", "tls", "nodes",
  "logLevel", "snapshotInterval", "snapshotRetention", "snapshotDownload", "tickMs", "electionTick", "heartbeatTick", "proposalTimeoutMs",
  "evaluateWaitMs", "join", "throttle", "promoteMaxLag", "maxApplyLag", "hsmProbeIntervalMs", "auth", "limits",
];
const HSM_KEYS = ["module", "tokenLabel", "pinFile", "pinEnv", "softhsmConf", "wrapMechanism", "recycleAfter"];

/**
 * `o` itself; a ConfigError naming the first key that is not one of `known`
 * (a misspelt setting would otherwise be ignored, and its default used).
 */
function knownKeys(o: Record<string, unknown>, known: readonly string[], at: string): Record<string, unknown> {
  const unknown = Object.keys(o).find((k) => !known.includes(k));
  if (unknown === undefined) return o;
  const near = known.find((k) => isNear(k.toLowerCase(), unknown.toLowerCase()));
  const hint = near === undefined ? `known here: ${known.join(", ")}` : `did you mean ${near}?`;
  throw new ConfigError(at === "" ? unknown : `${at}.${unknown}`, `is not a setting (${hint})`);
}

/** Whether `b` looks like a misspelling of `a`: two edits or fewer, or one a prefix of the other. */
function isNear(a: string, b: string): boolean {
  return a.startsWith(b) || b.startsWith(a) || editDistance(a, b) <= 2;
}

/** Levenshtein distance (the keys are short). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== "boolean") throw new ConfigError(field, "must be true or false");
  return v;
}

function obj(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ConfigError(field, "must be an object");
  return v as Record<string, unknown>;
}

function str(v: unknown, field: string): string {
  if (typeof v !== "string" || v.length === 0) throw new ConfigError(field, "must be a non-empty string");
  return v;
}

function posInt(v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) throw new ConfigError(field, `must be a positive integer (got ${JSON.stringify(v)})`);
  return v;
}

function nonNegInt(v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new ConfigError(field, `must be a non-negative integer (got ${JSON.stringify(v)})`);
  return v;
}

function hostPort(v: unknown, field: string): string {
  const s = str(v, field);
  const m = /^(.+):(\d{1,5})$/.exec(s);
  if (m === null || Number(m[2]) > 65535) throw new ConfigError(field, `must be host:port (got ${JSON.stringify(s)})`);
  return s;
}
