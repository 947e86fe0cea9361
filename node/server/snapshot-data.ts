// The server's Raft snapshot payload: the member peer addresses (which a
// restarted node needs to dial members added before the snapshot) and the
// vault state, inline (format 1) or by reference to the store (format 2,
// docs/storage.md, "Snapshot transfer"):
//   "bkvS" || u8 version || u32 len || peers (len bytes) || rest
//   peers = u32 n || n × (u64 node id || lp16(peer address))
//   format 1: rest = the vault's snapshot bytes (empty: no state yet)
//   format 2: rest = u64 applied index || lp16(state digest)
// Format 1 is written only for the bootstrap snapshot (a tiny new state) and
// was the only format of earlier releases; a node reads both.
import { Reader, Writer } from "../../proto/crypto/index.js";

const MAGIC = "bkvS";
const INLINE = 1;
const STORE = 2;
/** Longest state digest accepted (SHA-256: 32 bytes). */
const MAX_DIGEST = 64;

/** A store snapshot: the vault store's state at `appliedIndex`, whose state digest is `digest`. */
export interface StoreRef {
  readonly appliedIndex: number;
  readonly digest: Uint8Array;
}

export type ServerSnapshot =
  | { readonly peers: ReadonlyMap<number, string>; readonly vault: Uint8Array; readonly store?: undefined }
  | { readonly peers: ReadonlyMap<number, string>; readonly store: StoreRef; readonly vault?: undefined };

export function encodeServerSnapshot(s: ServerSnapshot): Uint8Array {
  const p = new Writer().u32(s.peers.size);
  for (const [id, addr] of [...s.peers].sort((a, b) => a[0] - b[0])) p.u64(id).str(addr);
  const peers = p.bytes();
  const rest = s.store !== undefined ? new Writer().u64(s.store.appliedIndex).lp16(s.store.digest).bytes() : s.vault;
  return new Writer().fixed(Buffer.from(MAGIC, "latin1")).u8(s.store !== undefined ? STORE : INLINE).u32(peers.length).fixed(peers).fixed(rest).bytes();
}

/** Throws an Error naming the problem on malformed data. */
export function decodeServerSnapshot(data: Uint8Array): ServerSnapshot {
  if (data.length < 9 || Buffer.from(data.subarray(0, 4)).toString("latin1") !== MAGIC) {
    throw new Error("server snapshot: bad magic");
  }
  const head = new Reader(data.subarray(4, 9), "server snapshot header");
  const version = head.u8();
  if (version !== INLINE && version !== STORE) throw new Error(`server snapshot: unsupported version ${version}`);
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
  const rest = data.subarray(9 + len);
  return version === INLINE ? { peers, vault: rest } : { peers, store: decodeStoreRef(rest) };
}

function decodeStoreRef(rest: Uint8Array): StoreRef {
  const r = new Reader(rest, "server snapshot store reference");
  const appliedIndex = r.u64();
  const digest = r.lp16();
  r.end();
  if (appliedIndex > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error("server snapshot: applied index above 2^53-1");
  if (digest.length === 0 || digest.length > MAX_DIGEST) throw new Error(`server snapshot: state digest of ${digest.length} bytes`);
  return { appliedIndex: Number(appliedIndex), digest: digest.slice() };
}
