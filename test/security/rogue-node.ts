// A rogue node for tests only: a real member of a LocalCluster (its own
// SoftHSM token, data dir, mTLS identity and peer address), built in this
// process from the same modules as node/server/node.ts (Hsm, DiskStorage,
// RaftLoop, Transport) but without its services, so that a test can act as
// a compromised host would:
// - proposeRaw/proposeUnchecked: put any bytes into the log, skipping the
//   validation vault-service.ts does before proposing (as a follower they
//   are forwarded to the leader in a MsgProp; as leader they are appended);
// - sendRaw: send any Raft message to a peer over the peer gRPC stream,
//   with this node's certificate;
// - rewrite: change what its own Raft loop sends (e.g. a different entry to
//   each follower at the same index: equivocation).
// What the honest nodes make of it is what the test checks.
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { certificateDer, decodePoint, encodePoint, nodeCertificateMessage, nodeDescriptorMessage, signWithCertificateKey } from "../../proto/crypto/index.js";
import { type Entry, type Message } from "../../node/raft/index.js";
import { DiskStorage, VaultFiles } from "../../node/storage/index.js";
import { Transport } from "../../node/transport/index.js";
import { Hsm } from "../../node/hsm/index.js";
import { type NodeAnnouncement, type VaultResult, VaultStateMachine, unstamp } from "../../node/vault/index.js";
import { loadConfig, type ServerConfig } from "../../node/server/config.js";
import { jsonLogger } from "../../node/server/log.js";
import { RaftLoop } from "../../node/server/raft-loop.js";
import { openVault } from "../../node/server/vault-open.js";

/** Rewrites (or drops, returning null) each message the rogue's Raft loop sends. */
export type Rewrite = (m: Message) => Message | null;

export class RogueNode {
  /** Applied to every outbound message of the rogue's own Raft loop; identity by default. */
  rewrite: Rewrite = (m) => m;
  /** What the rogue answers to GetStateDigest (a peer checking a snapshot): its own digests by default; any lie it likes. */
  vouch: (index: number) => Uint8Array | undefined = (index) => this.loop.digestAt(index);

  private constructor(
    /** Errors the rogue's own Raft loop gave up on (its state may be broken by what it sent). */
    readonly fatal: readonly unknown[],
    readonly cfg: ServerConfig, readonly hsm: Hsm, readonly storage: DiskStorage, readonly loop: RaftLoop, readonly transport: Transport,
    private readonly files: VaultFiles,
  ) {}

  /** Starts the member described by a bkv-node config file (its data dir must exist: it rejoins). */
  static async start(configFile: string, logFile: (line: string) => void): Promise<RogueNode> {
    const cfg = loadConfig(configFile, {});
    const hsm = await Hsm.open({
      modulePath: cfg.hsm.module, tokenLabel: cfg.hsm.tokenLabel, pinFile: cfg.hsm.pinFile as string,
      ...(cfg.hsm.softhsmConf !== undefined ? { softhsmConf: cfg.hsm.softhsmConf } : {}),
    });
    const log = jsonLogger("info", { node: cfg.nodeId, rogue: true }, () => ({}), logFile);
    const storage = await DiskStorage.open(join(cfg.dataDir, "raft"));
    const files = await VaultFiles.open(join(cfg.dataDir, "vault"));
    const sm = await openVault(files, storage.snapshot(), cfg.clusterId, log);
    const fatal: unknown[] = [];
    const loop = new RaftLoop({
      id: cfg.nodeId, clusterId: cfg.clusterId, storage, files, sm, tickMs: cfg.tickMs, electionTick: cfg.electionTick,
      heartbeatTick: cfg.heartbeatTick, snapshotInterval: cfg.snapshotInterval, snapshotRetention: cfg.snapshotRetention, proposalTimeoutMs: 10_000, log,
      onFatal: (err) => fatal.push(err),
      attest: () => Promise.resolve(), // the rogue installs whatever it is sent
    });
    const tls = { ca: readFileSync(cfg.tls.ca), cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key) };
    const self: { rogue?: RogueNode } = {};
    const transport: Transport = new Transport({
      nodeId: cfg.nodeId, clusterId: cfg.clusterId, listenAddress: cfg.peerListen, tls,
      onMessage: (m) => loop.step(m), reportUnreachable: (id) => loop.reportUnreachable(id),
      reportSnapshot: (id, ok) => loop.reportSnapshot(id, ok),
      snapshotSource: (from, index, term) => loop.openSnapshot(from, index, term),
      digestSource: (index): Uint8Array | undefined => self.rogue?.vouch(index),
    });
    await transport.start();
    const rogue = new RogueNode(fatal, cfg, hsm, storage, loop, transport, files);
    self.rogue = rogue;
    const link = {
      send: (ms: readonly Message[]) => transport.send(ms.map((m) => rogue.rewrite(m)).filter((m): m is Message => m !== null)),
      addPeer: (id: number, address: string) => transport.addPeer(id, address),
      removePeer: (id: number) => transport.removePeer(id),
      fetchSnapshot: (id: number, index: number, term: number, signal: AbortSignal) => transport.fetchSnapshot(id, index, term, signal),
    };
    loop.start(link, new Map(cfg.nodes.map((n) => [n.id, n.peerAddress])));
    return rogue;
  }

  get id(): number {
    return this.cfg.nodeId;
  }

  /** Proposes any bytes under a request id; resolves with the vault's verdict once this node applied them. */
  proposeRaw(requestId: Uint8Array, data: Uint8Array): Promise<VaultResult> {
    return this.loop.propose(requestId, data);
  }

  /** Proposes any bytes nobody waits for (an announcement, garbage); resolves once this node applied past them. */
  async proposeUnchecked(data: Uint8Array): Promise<number> {
    const after = this.storage.lastIndex();
    this.loop.proposeUnwaited(data);
    // A leader stamps its time on the entries it appends (node/vault commands.ts): compare what is inside.
    const at = () => this.entriesFrom(after + 1).find((e) => equal(unstamp(e.data).payload, data))?.index;
    await waitUntil(() => (at() ?? Infinity) <= this.loop.vault.appliedIndex, "the raw entry to apply here");
    return at() as number;
  }

  /**
   * What honest nodes answer to `data` applied next: the same deterministic
   * state machine, run on a copy of this node's applied state.
   */
  verdict(data: Uint8Array): VaultResult {
    const copy = VaultStateMachine.restore({ clusterId: this.cfg.clusterId }, this.loop.vault.snapshot());
    return copy.apply(copy.appliedIndex + 1, data, this.loop.voters).result;
  }

  /** Sends raw Raft messages to peers over the peer stream (mTLS with this node's certificate). */
  sendRaw(messages: readonly Message[]): void {
    this.transport.send(messages);
  }

  /** Entries of this node's log from `lo` to its last index. */
  entriesFrom(lo: number): Entry[] {
    const hi = this.storage.lastIndex();
    const from = Math.max(lo, this.storage.firstIndex());
    return from > hi ? [] : this.storage.entries(from, hi + 1, Infinity);
  }

  /**
   * An announcement of node `nodeId` carrying this node's keys, signed by
   * this node's identity key; `certified`: also with this node's own mTLS
   * certificate (issued by the cluster CA to node-<its id>) and its key's signature.
   */
  async announceAs(nodeId: number, clientAddress: string, certified = false): Promise<NodeAnnouncement> {
    const uncompressed = (k: Uint8Array) => encodePoint(decodePoint(k), false);
    const agreementPublicKey = uncompressed(this.hsm.agreementPublicKey);
    const identityPublicKey = uncompressed(this.hsm.identityPublicKey);
    const fields = { clusterId: this.cfg.clusterId, nodeId, address: clientAddress, agreementPublicKey, identityPublicKey };
    const node = { nodeId, clientAddress, agreementPublicKey, identityPublicKey, signature: await this.hsm.sign(nodeDescriptorMessage(fields)) };
    if (!certified) return node;
    const certificate = certificateDer(readFileSync(this.cfg.tls.cert), "the rogue's certificate");
    return { ...node, certified: { certificate, signature: signWithCertificateKey(readFileSync(this.cfg.tls.key), nodeCertificateMessage(fields)) } };
  }

  async stop(): Promise<void> {
    await this.loop.stop();
    await this.transport.stop();
    await this.storage.close();
    await this.files.close();
    this.hsm.close();
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export async function waitUntil(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
