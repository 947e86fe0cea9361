// The server's snapshot payload: the member peer addresses (which a
// restarted node needs to dial members added before the snapshot) and the
// vault's own snapshot bytes. Format v1:
//   "bkvS" || u8 1 || u32 len || peers (len bytes) || vault snapshot
//   peers = u32 n || n × (u64 node id || lp16(peer address))
import { Reader, Writer } from "../../proto/crypto/index.js";

const MAGIC = "bkvS";
const VERSION = 1;

export interface ServerSnapshot {
  readonly peers: ReadonlyMap<number, string>;
  /** VaultStateMachine.snapshot() bytes; empty for a node that has none yet. */
  readonly vault: Uint8Array;
}

export function encodeServerSnapshot(s: ServerSnapshot): Uint8Array {
  const p = new Writer().u32(s.peers.size);
  for (const [id, addr] of [...s.peers].sort((a, b) => a[0] - b[0])) p.u64(id).str(addr);
  const peers = p.bytes();
  const head = new Writer().fixed(Buffer.from(MAGIC, "latin1")).u8(VERSION).u32(peers.length).fixed(peers).bytes();
  const out = new Uint8Array(head.length + s.vault.length);
  out.set(head);
  out.set(s.vault, head.length);
  return out;
}

/** Throws an Error naming the problem on malformed data. */
export function decodeServerSnapshot(data: Uint8Array): ServerSnapshot {
  if (data.length < 9 || Buffer.from(data.subarray(0, 4)).toString("latin1") !== MAGIC) {
    throw new Error("server snapshot: bad magic");
  }
  const head = new Reader(data.subarray(4, 9), "server snapshot header");
  const version = head.u8();
  if (version !== VERSION) throw new Error(`server snapshot: unsupported version ${version}`);
  const len = head.u32();
  if (9 + len > data.length) throw new Error("server snapshot: truncated peer list");
  const r = new Reader(data.subarray(9, 9 + len), "server snapshot peers");
  const n = r.u32();
  const peers = new Map<number, string>();
  for (let i = 0; i < n; i++) {
    const id = Number(r.u64());
    peers.set(id, r.str());
  }
  r.end();
  return { peers, vault: data.subarray(9 + len) };
}
