// Whose data dir this is. A data dir holds one node's Raft log and votes:
// opened by another node id (a wrong BKV_NODE_ID, two pods' volumes
// swapped), that node would answer with the other's log and vote twice in
// a term; opened for another cluster, it would serve another state. Its
// `identity.json` names the cluster and node id, written after the first
// start that succeeded (a start that fails writes none, so a corrected
// config is not refused) and checked at every start before anything else
// is read. A data dir without one (new, or of a release before it) passes
// and gets one.
import { open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { StorageError, fsyncDir } from "../storage/index.js";
import { ConfigError } from "./config.js";

export const IDENTITY_FILE = "identity.json";

export interface DataDirIdentity {
  readonly clusterId: string;
  readonly nodeId: number;
}

/** The identity `dir` records; null when it records none. */
async function readIdentity(dir: string): Promise<DataDirIdentity | null> {
  const file = join(dir, IDENTITY_FILE);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new StorageError(`${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  try {
    const v = JSON.parse(text) as Partial<DataDirIdentity>;
    if (typeof v.clusterId === "string" && Number.isSafeInteger(v.nodeId)) return { clusterId: v.clusterId, nodeId: v.nodeId as number };
  } catch {
    // reported below
  }
  throw new StorageError(`${file} is damaged: it should hold {"clusterId": ..., "nodeId": ...} of the node whose data dir this is; write them back`);
}

/** Throws a ConfigError when `dir` records another cluster or node id than `me`. */
export async function checkDataDirIdentity(dir: string, me: DataDirIdentity): Promise<void> {
  const recorded = await readIdentity(dir);
  if (recorded === null || (recorded.clusterId === me.clusterId && recorded.nodeId === me.nodeId)) return;
  throw new ConfigError("dataDir", `${dir} holds the data of node ${recorded.nodeId} of cluster ${JSON.stringify(recorded.clusterId)}, `
    + `not of node ${me.nodeId} of cluster ${JSON.stringify(me.clusterId)}: point dataDir (BKV_DATA_DIR) at this node's own data dir, or correct nodeId (BKV_NODE_ID) or clusterId`);
}

/** Records `me` in `dir` unless it records an identity already; durable when it resolves. */
export async function recordDataDirIdentity(dir: string, me: DataDirIdentity): Promise<void> {
  if (await readIdentity(dir) !== null) return;
  const file = join(dir, IDENTITY_FILE);
  const fh = await open(`${file}.tmp`, "w", 0o644);
  try {
    await fh.writeFile(`${JSON.stringify({ clusterId: me.clusterId, nodeId: me.nodeId })}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(`${file}.tmp`, file);
  await fsyncDir(dir);
}
