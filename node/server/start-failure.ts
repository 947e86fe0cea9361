// What an operator should do about a failed start: the `action` field of the
// `start failed` line, beside the error (its name and message). Errors whose
// message already says what to do (ConfigError, the data dir checks) get
// none; every text here is fixed or made of config values, never of a PIN
// or other secret. docs/operations.md, "A node that does not start", lists
// the same causes.
import type { ServerConfig } from "./config.js";

type Listens = Pick<ServerConfig, "clientListen" | "peerListen" | "adminListen" | "metricsListen" | "dataDir">;

const LISTEN_SETTINGS = ["clientListen", "peerListen", "adminListen", "metricsListen"] as const;

const HSM_ACTIONS: Readonly<Record<string, string>> = {
  PIN_INCORRECT: "check the PIN in hsm.pinFile (or BKV_HSM_PIN); a hardware HSM locks the token after a few wrong PINs, so do not let the node restart in a loop meanwhile",
  PIN_LOCKED: "the token's user PIN is locked: unlock it with the token's security officer (SO) PIN, then start the node again",
  TOKEN_NOT_FOUND: "check hsm.tokenLabel and, for SoftHSM, hsm.softhsmConf (the token directory it names) and that the token was initialized (deploy/softhsm/init-token.sh)",
  TOKEN_NOT_PRESENT: "the token is not reachable: check the HSM's connection and the module's own configuration",
  MODULE_LOAD_FAILED: "check hsm.module (BKV_HSM_MODULE): the path of the HSM vendor's PKCS#11 library, readable by this user",
  CONFIG_INVALID: "check the hsm settings: the PIN source (hsm.pinFile or BKV_HSM_PIN) and hsm.module",
  KEY_INVALID: "the token's node keys are unusable (docs/hsm.md, \"Errors\"): restore this node's token from its backup",
};

const DATA_DIR_ACTION = "the data dir cannot be used as it is: keep it for analysis (move it aside), then replace this node: bkv admin remove ID, and a new "
  + "node under a new id with an empty data dir and join: true (a voter that lost its Raft state must not vote again under its old id); with no other "
  + "member left, restore it from a backup (docs/operations.md, \"A node that does not start\"); never edit or truncate its files by hand";

const WRITE_FAILED_ACTION = "a write to the data dir failed (the error says how; a full disk?): free space or repair the disk, then start the node again: it resumes from what it made durable";

/** The address in a listen error's message ("listen EADDRINUSE: address already in use 127.0.0.1:7101"). */
function listenAddress(message: string): string | undefined {
  return /(\S+:\d+)\s*$/.exec(message)?.[1];
}

/** The setting that names `address`, or the address alone. */
function settingOf(cfg: Listens, address: string): string {
  const port = address.slice(address.lastIndexOf(":") + 1);
  const named = LISTEN_SETTINGS.find((k) => cfg[k] === address) ?? LISTEN_SETTINGS.find((k) => cfg[k] !== "" && cfg[k].endsWith(`:${port}`));
  return named === undefined ? address : `${named} (${address})`;
}

function listenAction(err: Error & { code?: string }, cfg: Listens): string | undefined {
  const address = listenAddress(err.message);
  if (address === undefined) return undefined;
  if (err.code === "EADDRINUSE") return `${settingOf(cfg, address)} is in use by another process (a bkv-node of this config still running?): stop it, or change the setting`;
  if (err.code === "EADDRNOTAVAIL") return `${settingOf(cfg, address)} names an address this host does not have: listen on one of its addresses, or 0.0.0.0`;
  if (err.code === "EACCES") return `${settingOf(cfg, address)} may not be bound by this user (a port below 1024?): choose another port`;
  return undefined;
}

/** A file system refusal under the data dir (or of the dir itself, or its parents). */
function dataDirAccessAction(err: Error & { code?: string; path?: string }, dataDir: string): string | undefined {
  const path = err.path;
  if (typeof path !== "string" || !(path === dataDir || path.startsWith(`${dataDir}/`) || dataDir.startsWith(`${path}/`))) return undefined;
  if (err.code === "EEXIST" || err.code === "ENOTDIR") return `${path} is a file where the data dir ${dataDir} needs a directory: point dataDir at a directory`;
  if (!["EACCES", "EPERM", "EROFS"].includes(err.code ?? "")) return undefined;
  const uid = typeof process.getuid === "function" ? ` (uid ${process.getuid()})` : "";
  return `the data dir ${dataDir} must be writable by this process${uid}: give it to the node's user (chown -R), or on Kubernetes set the pod's fsGroup; a read-only volume cannot hold it`;
}

/** The action for a start that failed with `err`; undefined when the error's message says it or there is none to give. */
export function startFailureAction(err: unknown, cfg: Listens): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Error & { code?: string };
  if (e.name === "HsmError" && e.code !== undefined) return HSM_ACTIONS[e.code];
  if (e.name === "StorageFailedError") return WRITE_FAILED_ACTION;
  if (/^(StorageError|WalCorruptError|WalInconsistentError|SnapshotCorruptError)$/.test(e.name)) return DATA_DIR_ACTION;
  if (e.name === "VaultInvariantError" && /belongs to cluster/.test(e.message)) return "check clusterId (BKV_CLUSTER_ID) and dataDir (BKV_DATA_DIR): this data dir is another cluster's";
  return dataDirAccessAction(e, cfg.dataDir) ?? listenAction(e, cfg);
}
