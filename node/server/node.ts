// A vault node: wires the HSM, DiskStorage, the Raft loop, the peer
// transport, the client and admin gRPC servers, metrics and the node's
// self-announcement into the cluster descriptor.
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import type { Server as HttpServer } from "node:http";
import * as grpc from "@grpc/grpc-js";
import { certificateDer, nodeCertificateMessage, nodeDescriptorMessage, signWithCertificateKey } from "../../proto/crypto/index.js";
import { VaultService } from "../../proto/gen/bkv/v1/vault_pb.js";
import { AdminService } from "../../proto/gen/bkv/v1/admin_pb.js";
import { packageVersion } from "../../proto/version.js";
import { type ServerHooks, serviceDefinition, strictServer, type UndecodableRequest } from "../../proto/rpc.js";
import { MessageType, NONE, bootstrapSnapshot, type Message } from "../raft/index.js";
import { DiskStorage, EvaluationLedger, VaultFiles, fsyncDir } from "../storage/index.js";
import { PEER_PORT_CONNECTIONS, Transport, type ConnectionEvents, type TlsMaterial } from "../transport/index.js";
import { HsmWorkerPool } from "../hsm/index.js";
import { VaultStateMachine, announcementRefusal, encodeCommand, type NodeAnnouncement } from "../vault/index.js";
import { ConfigError, type ServerConfig } from "./config.js";
import type { Logger } from "./log.js";
import { type Warn, throttledWarn } from "./log-throttle.js";
import { ConnectionGate, type PortCaps } from "../../proto/connection-gate.js";
import { openFilesShortfall, readOpenFilesLimit } from "./open-files.js";
import { Metrics, logInMemory, serveMetrics } from "./metrics.js";
import { RaftLoop } from "./raft-loop.js";
import { DEFAULT_MAX_FORWARDED_ENTRY_BYTES } from "./forward-gate.js";
import { encodeServerSnapshot } from "./snapshot-data.js";
import { openVault } from "./vault-open.js";
import { vaultService } from "./vault-service.js";
import { adminService, type NodeFacts } from "./admin-service.js";
import { adminAuth } from "./admin-auth.js";
import { NodeHealth, type HealthFacts, healthState, notServingReason } from "./health.js";
import { HsmProbe } from "./hsm-probe.js";
import { Joiner } from "./join.js";
import { attestSnapshot } from "./snapshot-attest.js";
import { addReflection } from "./reflection.js";
import type { LeaderHint } from "./errors.js";
import { ClientGate, bootstrapIssuers, legacyIssuers } from "./auth.js";
import { Admission, clientPortOptions } from "./admission.js";
import { AuditLog } from "./audit.js";
import { recordedAuditHead, reportAuditGap } from "./audit-head.js";
import { CLOCK_PROBE_MS, ClusterClock } from "./cluster-clock.js";
import { type DataDirLock, lockDataDir } from "./data-dir-lock.js";
import { checkDataDirIdentity, recordDataDirIdentity } from "./data-dir-identity.js";
import { tokenKeysMismatch, uncompressed } from "./token-keys.js";
import { type TokenGate, holdsRaftFiles, refuseLostRaftState, tokenGate } from "./lost-state.js";
import { loadNodeTls } from "./tls-files.js";

/** What the log and /readyz say while client authentication is off. */
export const AUTH_OFF_NOTICE = "client authentication is OFF (auth.disabled): any caller may act for any user; for local tests only";

/** How long a peer has to answer GetStateDigest before a snapshot install counts it as silent. */
const ATTEST_TIMEOUT_MS = 5000;
/** How long a peer has to answer a clock reading (cluster-clock.ts). */
const CLOCK_TIMEOUT_MS = 3000;
/** An announcement proposed and not yet applied is proposed again after this long (it may have been dropped). */
const ANNOUNCE_RETRY_MS = 5000;
/** A node announces itself once it applied within this many entries of the commit index it knows (caught up). */
const ANNOUNCE_MAX_LAG = 100;
/** The window of throttledWarn for the lines callers can cause. */
const CALLER_WARN_WINDOW_MS = 10_000;
/**
 * Open connections the admin port takes, in all and from one address (one
 * more is closed at accept, before TLS). Its callers are operators' CLIs
 * and joining nodes, a connection per call; the caps keep strangers who
 * reach the port (mutual TLS: no further than the handshake) from taking
 * the node's file descriptors.
 */
const ADMIN_PORT_CONNECTIONS = { maxConnections: 64, maxConnectionsPerAddress: 16, connectsPerSecPerAddress: 8 } as const;
/** The method's name in a gRPC path (/bkv.v1.VaultService/Register → Register): the metrics' label. */
const methodName = (path: string): string => path.slice(path.lastIndexOf("/") + 1);

export interface NodeAddresses {
  readonly client: string;
  readonly peer: string;
  readonly admin: string;
}

export class VaultNode {
  private loop!: RaftLoop;
  private hsm!: HsmWorkerPool;
  private gate!: ClientGate;
  private audit: AuditLog | null = null;
  private storage!: DiskStorage;
  private files: VaultFiles | null = null;
  private ledger!: EvaluationLedger;
  private transport!: Transport;
  private clientServer: grpc.Server | null = null;
  /** The client port's listener (connection caps); clientServer serves what it admits. */
  private clientGate: ConnectionGate | null = null;
  private adminGate: ConnectionGate | null = null;
  private adminServer: grpc.Server | null = null;
  private http: HttpServer | null = null;
  private announceTimer: NodeJS.Timeout | null = null;
  private announcing = false;
  /** When this node last proposed its announcement (ms): retried at most every ANNOUNCE_RETRY_MS. */
  private announcedAt = 0;
  /** The last local refusal of this node's own announcement, logged once. */
  private announceRefusal = "";
  private stopping = false;
  readonly metrics: Metrics;
  private readonly health = new NodeHealth(() => healthState(this.healthFacts()));
  private hsmProbe: HsmProbe | null = null;
  /** The cluster's time (tokens, and the stamps this node puts on entries as leader), read from the peers every CLOCK_PROBE_MS. */
  private readonly clock = new ClusterClock({
    now: Date.now,
    peers: () => this.transport?.peerIds ?? [],
    probe: (id) => this.transport.peerClock(id, CLOCK_TIMEOUT_MS),
    onChange: (offsetMs) => this.onClockOffset(offsetMs),
  });
  private clockTimer: NodeJS.Timeout | null = null;
  /** Marks of a start's timeline (docs/operations.md "Restart timeline"), each logged once. */
  private heardPeer = false;
  /** start() ended: the metrics port answers 503 until then. */
  private startEnded = false;
  private caughtUpLogged = false;
  private joiner: Joiner | null = null;
  /** Held from the start of start() until stop() ends: one process per data dir (data-dir-lock.ts). */
  private dataDirLock: DataDirLock | null = null;
  /** Lines an unauthenticated caller can cause: each written at most once per CALLER_WARN_WINDOW_MS (the metrics count every one). */
  private readonly callerWarn: Warn;

  constructor(private readonly cfg: ServerConfig, private readonly log: Logger, private readonly onFatal: (err: unknown) => void) {
    this.callerWarn = throttledWarn(log, CALLER_WARN_WINDOW_MS);
    this.metrics = new Metrics(() => (this.loop === undefined ? null : {
      term: () => this.loop.term,
      commit: () => this.loop.commitIndex,
      applied: () => this.loop.vault.appliedIndex,
      leader: () => this.loop.leaderId,
      isLeader: () => this.loop.isLeader,
      snapshotIndex: () => this.loop.lastSnapshotIndex,
      vaultStats: () => this.loop.vault.stats(),
      vaultTime: () => this.loop.vault.leaderTime,
      storeStats: () => this.files?.store.stats() ?? Promise.resolve(null),
      logInMemory: () => logInMemory(this.storage),
    }), { node: String(cfg.nodeId) });
  }

  async start(): Promise<NodeAddresses> {
    const c = this.cfg;
    this.dataDirLock = await lockDataDir(c.dataDir); // before anything reads or writes the data dir
    const identity = { clusterId: c.clusterId, nodeId: c.nodeId };
    await checkDataDirIdentity(c.dataDir, identity);
    this.checkOpenFilesLimit();
    const { client, admin } = await this.bindPorts().catch((err: unknown) => this.closePorts(err));
    const { tls, peer } = await this.openTokenAndRaft().catch((err: unknown) => this.closePorts(err));
    this.serveClients(tls);
    this.serveAdmin(tls);
    if (c.join) this.startJoining(tls);
    this.announceTimer = setInterval(() => { void this.maybeAnnounce(); }, 500);
    await recordDataDirIdentity(c.dataDir, identity);
    this.startEnded = true;
    this.log.info("node started", { client, peer, admin, metrics: c.metricsListen, applied: this.loop.vault.appliedIndex, clientAuthentication: c.auth.enabled });
    return { client, peer, admin };
  }

  /**
   * The client, admin and metrics ports, bound before anything is opened: a
   * port in use fails the start before the node takes part in Raft (in a
   * restart loop, it would take part in every election it lived through).
   * The gates close every connection until serveClients and serveAdmin;
   * the metrics port answers 503 until the start ended.
   */
  private async bindPorts(): Promise<{ client: string; admin: string }> {
    const c = this.cfg;
    const { maxConnections, maxConnectionsPerAddress, connectsPerSecPerAddress } = c.limits;
    const caps = { maxConnections, maxConnectionsPerAddress, connectsPerSecPerAddress };
    this.clientGate = new ConnectionGate({ ...caps, ...this.connectionEvents("client", caps) });
    this.adminGate = new ConnectionGate({ ...ADMIN_PORT_CONNECTIONS, ...this.connectionEvents("admin", ADMIN_PORT_CONNECTIONS) });
    const client = await this.clientGate.listen(c.clientListen);
    const admin = await this.adminGate.listen(c.adminListen);
    if (c.metricsListen !== "") {
      this.http = await serveMetrics(c.metricsListen, {
        metrics: this.metrics, notReady: () => notServingReason(this.healthFacts()), started: () => this.startEnded,
        notice: c.auth.enabled ? "" : AUTH_OFF_NOTICE,
      });
    }
    return { client, admin };
  }

  /** Closes the ports bindPorts bound (a start that failed), and rethrows `err`. */
  private closePorts(err: unknown): never {
    this.clientGate?.close();
    this.adminGate?.close();
    this.http?.close();
    throw err;
  }

  /**
   * The stores, the token, then Raft: a node takes part in Raft only with
   * its token open and found to be its own (a wrong PIN or a foreign token
   * never votes). The HSM's worker threads start while the stores open
   * (each takes a second or more at a restart); the token opens through
   * `gate`, at once at a restart, after the bootstrap snapshot in a new
   * data dir (lost-state.ts). Resolves with the node's TLS material and its peer port's address.
   */
  private async openTokenAndRaft(): Promise<{ tls: TlsMaterial; peer: string }> {
    const c = this.cfg;
    const gate = tokenGate();
    if (holdsRaftFiles(join(c.dataDir, "raft"))) gate.open();
    const hsm = this.openHsm(gate.opened).then((h) => {
      this.log.info("hsm opened", { token: c.hsm.tokenLabel });
      return h;
    });
    // Awaited after the stores: a token that fails sooner must not be an unhandled rejection meanwhile.
    hsm.catch(() => undefined);
    const closeHsm = async (err: unknown): Promise<never> => {
      gate.abort(err);
      await hsm.then((h) => h.close(), () => undefined);
      throw err;
    };
    const tls = await Promise.resolve().then(() => this.tls()).catch(closeHsm);
    const { files, sm } = await this.openStores(hsm, gate).catch(closeHsm);
    if (!c.auth.enabled && sm.issuers !== null) await closeHsm(authOffInAuthenticatedCluster());
    this.hsm = await hsm;
    const foreignToken = tokenKeysMismatch(sm.nodes(), c.nodeId, this.hsm, c.hsm.tokenLabel);
    if (foreignToken !== undefined) await closeHsm(foreignToken);
    const peer = await this.startRaft(files, sm, tls).catch(closeHsm);
    this.startHsmProbe();
    return { tls, peer };
  }

  private startHsmProbe(): void {
    this.metrics.watchHsm(this.hsm);
    this.hsmProbe = new HsmProbe({
      intervalMs: this.cfg.hsmProbeIntervalMs, probe: () => this.hsm.sign(randomBytes(32)),
      onResult: (ok) => this.onHsmProbe(ok),
    });
    this.metrics.hsmProbed(true);
    this.hsmProbe.start();
  }

  /** The audit log, the Raft loop and the peer transport, started; resolves with the peer port's address. */
  private async startRaft(files: VaultFiles, sm: VaultStateMachine, tls: TlsMaterial): Promise<string> {
    const c = this.cfg;
    const auditFile = join(c.dataDir, "audit.log");
    const audit = AuditLog.open(auditFile, this.storage.snapshot().metadata.index, recordedAuditHead(files.store));
    if (audit.gap !== null) reportAuditGap(audit.gap, auditFile, this.log, this.metrics.auditGaps);
    this.audit = audit;
    this.loop = new RaftLoop({
      id: c.nodeId, clusterId: c.clusterId, storage: this.storage, files, sm, tickMs: c.tickMs, electionTick: c.electionTick,
      heartbeatTick: c.heartbeatTick, snapshotInterval: c.snapshotInterval, snapshotRetention: c.snapshotRetention, proposalTimeoutMs: c.proposalTimeoutMs,
      clusterNow: () => this.clock.now(), log: this.log, onFatal: this.onFatal,
      maxForwardedEntryBytes: Math.max(DEFAULT_MAX_FORWARDED_ENTRY_BYTES, 2 * c.limits.maxMessageBytes),
      snapshotDownload: c.snapshotDownload, onDownloadAbandoned: (reason) => this.metrics.snapshotDownloadsAbandoned.inc({ reason }),
      attest: (candidate) => attestSnapshot({
        selfId: c.nodeId, threshold: c.threshold, log: this.log,
        ask: (id, index) => this.transport.stateDigest(id, index, ATTEST_TIMEOUT_MS),
        refused: (reason) => this.metrics.snapshotsRefused.inc({ reason }),
      }, candidate),
      onApplied: (n, ms) => {
        this.metrics.appliedEntries.inc(n);
        this.metrics.applySeconds.observe(ms / 1000);
        if (!this.caughtUpLogged) this.logIfCaughtUp();
      },
      beforeStoreCommit: (store) => audit.flushFor(store), // the audit log is never behind the store, which records its head
      onOutcome: audit.record,
    });
    this.transport = new Transport({
      nodeId: c.nodeId, clusterId: c.clusterId, listenAddress: c.peerListen, tls,
      onMessage: (m) => {
        if (!this.heardPeer) this.logFirstMessage(m);
        this.loop.step(m);
        if (!this.caughtUpLogged) this.logIfCaughtUp(); // a node that has nothing to apply is caught up at the first heartbeat
      },
      reportUnreachable: (id) => this.loop.reportUnreachable(id),
      reportSnapshot: (id, ok) => this.loop.reportSnapshot(id, ok),
      snapshotSource: (from, index, term) => this.loop.openSnapshot(from, index, term),
      digestSource: (index) => this.loop.digestAt(index),
      onUndecodable: this.refused,
      log: (event, fields) => this.log.debug(event, fields),
      connections: this.connectionEvents("peer", PEER_PORT_CONNECTIONS),
    });
    this.metrics.watchTransport(this.transport.stats);
    const peer = await this.transport.start();
    this.loop.start(this.transport, new Map(c.nodes.map((n) => [n.id, n.peerAddress])));
    // The first readings of the peers' clocks: until they end, this node stamps nothing as leader.
    void this.clock.probeAll();
    this.clockTimer = setInterval(() => { void this.clock.probeAll(); }, CLOCK_PROBE_MS);
    return peer;
  }

  private openHsm(openAfter: Promise<void>): Promise<HsmWorkerPool> {
    const h = this.cfg.hsm;
    return HsmWorkerPool.open({
      modulePath: h.module, tokenLabel: h.tokenLabel,
      ...(h.pinFile !== undefined ? { pinFile: h.pinFile } : { pinEnv: h.pinEnv as string }),
      ...(h.softhsmConf !== undefined ? { softhsmConf: h.softhsmConf } : {}),
      ...(h.wrapMechanism !== undefined ? { wrapMechanism: h.wrapMechanism } : {}),
    }, { recycleAfter: h.recycleAfter }, openAfter);
  }

  /** The Raft storage (bootstrapped when new, once `hsm` opened) and the vault store, opened at its applied index. */
  private async openStores(hsm: Promise<HsmWorkerPool>, gate: TokenGate): Promise<{ files: VaultFiles; sm: VaultStateMachine }> {
    const c = this.cfg;
    const t0 = performance.now();
    this.storage = await DiskStorage.open(join(c.dataDir, "raft"), { logger: { warn: (m) => this.log.warn(m) } });
    const snapshot = this.storage.snapshot().metadata.index;
    const ms = Math.round(performance.now() - t0);
    this.log.info("raft log opened", { snapshot, entries: this.storage.lastIndex() - snapshot, lastIndex: this.storage.lastIndex(), ms });
    await this.bootstrapIfEmpty(hsm, gate);
    const files = await VaultFiles.open(join(c.dataDir, "vault"));
    this.files = files;
    this.ledger = await EvaluationLedger.open(join(c.dataDir, "evaluations"));
    await fsyncDir(c.dataDir); // the entries of raft/, vault/ and evaluations/ themselves, when this start made them
    return { files, sm: await openVault(files, this.storage.snapshot(), c.clusterId, this.log) };
  }

  private logFirstMessage(m: Message): void {
    this.heardPeer = true;
    this.log.info("first message from a peer", { from: m.from, type: MessageType[m.type], commit: m.commit });
  }

  /** Logs once that this node, having heard from a leader, applied the commit index it knows. */
  private logIfCaughtUp(): void {
    const { leaderId, commitIndex } = this.loop;
    if (!this.heardPeer || leaderId === NONE || this.loop.vault.appliedIndex < commitIndex) return;
    this.caughtUpLogged = true;
    this.log.info("applied the commit index", { applied: this.loop.vault.appliedIndex, commit: commitIndex, leader: leaderId });
  }

  /**
   * A new data dir: every initial voter starts from the same bootstrap snapshot (format 1: the tiny new state
   * inline), written once `hsm` opened: a first start that fails on its token leaves none behind, whose voters
   * and bootstrap-only settings (throttle, auth) a corrected config could no longer change. The token opens (`gate`) only
   * once the snapshot is ready: one whose keys existed before served this voter already, whose Raft state is lost (lost-state.ts).
   */
  private async bootstrapIfEmpty(hsm: Promise<HsmWorkerPool>, gate: TokenGate): Promise<void> {
    const empty = this.storage.lastIndex() === 0 && this.storage.snapshot().metadata.index === 0;
    if (!empty || this.cfg.join) {
      gate.open();
      if (empty) this.log.info("joining a running cluster: waiting for the leader's snapshot");
      return;
    }
    const peers = new Map(this.cfg.nodes.map((n) => [n.id, n.peerAddress]));
    // The cluster CA enters the replicated state here, once: it certifies every announcement (docs/vault.md §3).
    // So do the client-token issuer keys: every node verifies begin and register entries against them (auth.ts).
    const clusterCa = certificateDer(readFileSync(this.cfg.tls.ca), `the CA file ${this.cfg.tls.ca}`);
    const issuers = bootstrapIssuers(this.cfg.auth);
    const vault = new VaultStateMachine({ clusterId: this.cfg.clusterId, clusterCa, throttle: this.cfg.throttle, ...(issuers === undefined ? {} : { issuers }) }).snapshot();
    gate.open();
    refuseLostRaftState(await hsm, { nodeId: this.cfg.nodeId, tokenLabel: this.cfg.hsm.tokenLabel, dataDir: this.cfg.dataDir });
    await this.storage.saveSnapshot(bootstrapSnapshot(this.cfg.nodes.map((n) => n.id), encodeServerSnapshot({ peers, vault })));
    this.log.info("bootstrapped a new member", { voters: this.cfg.nodes.map((n) => n.id) });
  }

  private tls(): TlsMaterial {
    return loadNodeTls(this.cfg.tls);
  }

  /** Every undecodable request (client, admin or peer port) is logged and counted; it ended with INVALID_ARGUMENT. */
  private readonly refused = (req: UndecodableRequest, peer: string): void => {
    this.callerWarn("undecodable request refused", req.method, { method: req.method, peer, bytes: req.length, why: req.message });
    this.metrics.request(methodName(req.method), "INVALID_ARGUMENT", 0);
  };

  /** A port's hooks: undecodable requests, and calls that ended before their handler got the request (proto/early-ends.ts). */
  private portHooks(port: "client" | "admin"): ServerHooks {
    return {
      undecodable: this.refused,
      earlyEnd: (method, peer, stage) => {
        this.metrics.earlyEnds.inc({ port, method: methodName(method), stage });
        this.callerWarn("call ended before its request reached the service", `${port}${method}${stage}`, { port, method, peer, stage });
      },
    };
  }

  /**
   * The client port's services, behind the gate bindPorts bound. The port
   * follows the replicated issuer keys as applied. A state without any (a
   * cluster bootstrapped before the keys entered the state, upgraded in
   * place) is verified at the port against the config's JWKS files, as that
   * release did, and not on apply (docs/operations.md "Client
   * authentication"); a node holding no state yet (a joiner) admits nobody.
   */
  private serveClients(tls: TlsMaterial): void {
    const c = this.cfg;
    const legacyKeys = legacyIssuers(c.auth, (err) => this.log.error("the state holds no issuer keys, and the config's JWKS files cannot be read: no client is admitted", { error: err.message }));
    this.gate = new ClientGate({
      clusterId: c.clusterId, authenticating: c.auth.enabled, admission: new Admission(c.limits),
      issuers: () => (this.loop.vault.appliedIndex === 0 ? null : this.loop.vault.issuers ?? legacyKeys()),
      verified: () => this.loop.vault.verifiedTokens,
      now: () => this.clock.now() ?? Date.now(),
    });
    if (!c.auth.enabled) this.log.warn(AUTH_OFF_NOTICE);
    const server = strictServer(this.portHooks("client"), clientPortOptions(c.limits));
    server.addService(serviceDefinition(VaultService), vaultService({
      nodeId: c.nodeId, clusterId: c.clusterId, threshold: c.threshold, loop: () => this.loop,
      hsm: this.hsm, ledger: this.ledger, log: this.log, metrics: this.metrics, leaderHint: this.leaderHint, evaluateWaitMs: c.evaluateWaitMs, gate: this.gate,
    }));
    this.health.serve(server, [VaultService.typeName]);
    this.clientServer = server;
    // Client port: server-authenticated TLS with the cluster certificate; clients need no certificate.
    this.clientGate!.serve(server, grpc.ServerCredentials.createSsl(tls.ca, [{ private_key: tls.key, cert_chain: tls.cert }], false));
  }

  /** The admin port's services, behind the gate bindPorts bound. */
  private serveAdmin(tls: TlsMaterial): void {
    const refusedCaller = (cn: string, peer: string) => this.log.warn("admin caller refused", { cn, peer });
    const server = strictServer(this.portHooks("admin"), { interceptors: [adminAuth(refusedCaller)] });
    server.addService(serviceDefinition(AdminService), adminService({
      nodeId: this.cfg.nodeId, clusterId: this.cfg.clusterId, loop: () => this.loop, log: this.log, leaderHint: this.adminLeaderHint,
      peerReachable: (id) => this.transport.peerState(id) === "open",
      adminAddressOf: (id) => this.cfg.nodes.find((n) => n.id === id)?.adminAddress ?? "",
      promoteMaxLag: this.cfg.promoteMaxLag, facts: () => this.facts(),
      record: (method, code, ms) => this.metrics.adminRequest(method, code, ms),
      store: () => this.files?.store ?? null,
    }));
    this.health.serve(server, [AdminService.typeName]);
    addReflection(server, [AdminService]);
    this.adminServer = server;
    // Admin port: mutual TLS, callers need a certificate from the cluster CA (an operator's or a node's: admin-auth.ts).
    this.adminGate!.serve(server, grpc.ServerCredentials.createSsl(tls.ca, [{ private_key: tls.key, cert_chain: tls.cert }], true));
  }

  /** Warns once when the open-file limit is below what the ports' connection caps and the node's own files may hold. */
  private checkOpenFilesLimit(): void {
    const connections = this.cfg.limits.maxConnections + ADMIN_PORT_CONNECTIONS.maxConnections + PEER_PORT_CONNECTIONS.maxConnections;
    const short = openFilesShortfall(readOpenFilesLimit(), connections);
    if (short !== null) {
      this.log.warn("the open-file limit is below what the node may hold: raise it (ulimit -n, LimitNOFILE) or a connection flood ends in EMFILE on the node's own files", short);
    }
  }

  /** A port's connection gate's reports: the open count and refusals as metrics, refusals and failed accepts as throttled warnings. */
  private connectionEvents(port: "client" | "admin" | "peer", caps: PortCaps): ConnectionEvents {
    const { maxConnections, maxConnectionsPerAddress, connectsPerSecPerAddress } = caps;
    return {
      onCount: (open) => this.metrics.connections.set({ port }, open),
      onRefused: (reason, address) => {
        this.metrics.connectionsRefused.inc({ port, reason });
        this.callerWarn("connection refused at a connection cap", `${port}${reason}`, { port, reason, address, maxConnections, maxConnectionsPerAddress, connectsPerSecPerAddress });
      },
      onAcceptError: (err) => this.callerWarn("a connection could not be accepted", `${port}${(err as NodeJS.ErrnoException).code ?? err.name}`, { port, error: err }),
    };
  }

  /** A majority of the members' clocks disagrees with this node's (or agrees again): said once per change, and in the metric. */
  private onClockOffset(offsetMs: number): void {
    this.metrics.clockOffset.set(offsetMs / 1000);
    if (offsetMs === 0) this.log.info("this node's clock agrees with the cluster's again", {});
    else this.log.warn("this node's clock differs from the cluster's: it stamps entries and checks tokens at the cluster's time; fix its clock (NTP)", { offsetMs });
  }

  /** Fields on every log line once the Raft loop runs. */
  logContext(): Record<string, unknown> {
    return this.loop === undefined ? {} : { term: this.loop.term };
  }

  readonly leaderHint = (): LeaderHint => {
    const lead = this.loop.leaderId;
    const announced = this.loop.vault.nodes().find((n) => n.nodeId === lead)?.clientAddress;
    const configured = this.cfg.nodes.find((n) => n.id === lead)?.clientAddress;
    return { leaderId: lead, leaderAddress: announced ?? configured ?? "", self: this.cfg.nodeId };
  };

  /** The leader and its admin address (config nodes[].adminAddress), for the admin port's not-leader answers. */
  readonly adminLeaderHint = (): LeaderHint => {
    const lead = this.loop.leaderId;
    return { leaderId: lead, leaderAddress: this.cfg.nodes.find((n) => n.id === lead)?.adminAddress ?? "", self: this.cfg.nodeId };
  };

  private healthFacts(): HealthFacts {
    return {
      stopping: this.stopping, leaderId: this.loop.leaderId, applyLag: this.loop.commitIndex - this.loop.vault.appliedIndex,
      maxApplyLag: this.cfg.maxApplyLag, hsm: this.hsmProbe?.state ?? { ok: true, error: "" },
    };
  }

  private onHsmProbe(ok: boolean): void {
    this.metrics.hsmProbed(ok);
    if (!ok) this.log.warn("HSM probe failed", { why: this.hsmProbe?.state.error });
  }

  private async facts(): Promise<NodeFacts> {
    const f = this.healthFacts();
    return { version: packageVersion(), storeBytes: await dirBytes(join(this.cfg.dataDir, "raft")), hsm: f.hsm, notServing: notServingReason(f) };
  }

  private startJoining(tls: TlsMaterial): void {
    const me = this.cfg.nodes.find((n) => n.id === this.cfg.nodeId);
    const adminAddresses = this.cfg.nodes.flatMap((n) => (n.id !== this.cfg.nodeId && n.adminAddress !== undefined ? [n.adminAddress] : []));
    this.joiner = new Joiner({
      nodeId: this.cfg.nodeId, peerAddress: me?.peerAddress ?? this.cfg.peerListen, adminAddresses, tls, loop: () => this.loop, log: this.log,
    });
    this.joiner.start();
  }

  /** Proposes this node's descriptor entry until the vault holds it with the current address. */
  private async maybeAnnounce(): Promise<void> {
    if (this.announcing || this.stopping || this.loop.leaderId === NONE) return;
    // A node catching up (a joiner downloading its first snapshot) holds no state to judge by, and a proposal
    // every tick would only fill the leader's log; one in flight is given time to apply.
    const v = this.loop.vault;
    if (v.appliedIndex === 0 || this.loop.commitIndex - v.appliedIndex > ANNOUNCE_MAX_LAG || Date.now() - this.announcedAt < ANNOUNCE_RETRY_MS) return;
    const me = this.cfg.nodes.find((n) => n.id === this.cfg.nodeId);
    const address = me?.clientAddress ?? this.cfg.clientListen;
    const have = this.loop.vault.nodes().find((n) => n.nodeId === this.cfg.nodeId);
    if (have !== undefined && have.clientAddress === address) {
      if (this.announceTimer !== null) clearInterval(this.announceTimer);
      this.announceTimer = null;
      return;
    }
    this.announcing = true;
    try {
      const node = await this.announcement(address);
      const refused = announcementRefusal(this.cfg.clusterId, this.loop.vault.clusterCa, node);
      if (refused !== undefined) {
        // Every node would refuse it (the same check on the same state): do not fill the log with it.
        if (refused.message !== this.announceRefusal) this.log.error("this node's announcement would be refused: check its certificate and the cluster CA", { reason: refused.reason, why: refused.message });
        this.announceRefusal = refused.message;
        return;
      }
      this.loop.proposeUnwaited(encodeCommand({ kind: "announce", node }));
      this.announcedAt = Date.now();
      this.log.info("announced this node", { address });
    } catch (err) {
      this.log.warn("announcement not proposed yet", { error: err });
    } finally {
      this.announcing = false;
    }
  }

  private async announcement(clientAddress: string): Promise<NodeAnnouncement> {
    const agreementPublicKey = uncompressed(this.hsm.agreementPublicKey);
    const identityPublicKey = uncompressed(this.hsm.identityPublicKey);
    const fields = { clusterId: this.cfg.clusterId, nodeId: this.cfg.nodeId, address: clientAddress, agreementPublicKey, identityPublicKey };
    const node = { nodeId: this.cfg.nodeId, clientAddress, agreementPublicKey, identityPublicKey, signature: await this.hsm.sign(nodeDescriptorMessage(fields)) };
    if (this.loop.vault.clusterCa === null) return node; // a cluster bootstrapped before the CA entered the state: kind 5
    const t = this.tls();
    const certified = { certificate: certificateDer(t.cert, `the certificate file ${this.cfg.tls.cert}`), signature: signWithCertificateKey(t.key, nodeCertificateMessage(fields)) };
    return { ...node, certified };
  }

  /** Graceful stop: hand leadership over, stop serving, flush storage, close the HSM. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.announceTimer !== null) clearInterval(this.announceTimer);
    if (this.clockTimer !== null) clearInterval(this.clockTimer);
    this.joiner?.stop();
    this.hsmProbe?.stop();
    this.health.stop();
    if (this.loop?.isLeader && this.loop.voters.length > 1) {
      const to = await this.loop.transferLeadership(NONE, 2000);
      this.log.info("leadership transferred before shutdown", { to });
    }
    this.clientGate?.close();
    this.adminGate?.close();
    await Promise.all([shutdown(this.clientServer), shutdown(this.adminServer)]);
    await this.loop?.stop();
    await this.audit?.close();
    await this.transport?.stop();
    await this.storage?.close();
    await this.files?.close();
    await this.ledger?.close();
    this.http?.close();
    await this.hsm?.close();
    await this.dataDirLock?.release();
    this.log.info("node stopped", { applied: this.loop?.vault.appliedIndex });
  }
}

/**
 * auth.disabled in a cluster whose state verifies client tokens: such a node
 * would answer every user's reads, Evaluate, confirmations and deletions to
 * anyone (only begins and registrations are checked on apply), so it does
 * not start.
 */
function authOffInAuthenticatedCluster(): ConfigError {
  return new ConfigError("auth", "is disabled, but this cluster verifies client tokens (its state holds issuer keys): a node with authentication off would serve any user's record to anyone; remove auth.disabled and configure auth.issuers");
}

/** Bytes of the files under `dir` (0 when it cannot be read). */
async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  try {
    for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
      if (e.isFile()) total += (await stat(join(e.parentPath, e.name)).catch(() => ({ size: 0 }))).size;
    }
  } catch {
    return 0;
  }
  return total;
}

function shutdown(server: grpc.Server | null): Promise<void> {
  if (server === null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => { server.forceShutdown(); resolve(); }, 2000);
    server.tryShutdown(() => { clearTimeout(t); resolve(); });
  });
}
