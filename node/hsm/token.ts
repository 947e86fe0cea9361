// One PKCS#11 token: module loading, C_Initialize with OS locking, the token
// found by label, login, and a fixed pool of logged-in sessions.
//
// Invariants:
// - C_Initialize runs at most once per process per module path (PKCS#11 state
//   is per process; SoftHSM reads SOFTHSM2_CONF only then). A second open in
//   the same process with a different softhsmConf is refused.
// - a session is used by one operation at a time: withSession() hands it out
//   exclusively, so *Async calls never share a session.
import pkcs11js from "pkcs11js";
import type { ResolvedHsmConfig } from "./config.js";
import { HsmError, ckrName, toHsmError } from "./errors.js";

type PKCS11 = pkcs11js.PKCS11;
export type Handle = pkcs11js.Handle;

interface LoadedModule {
  p11: PKCS11;
  softhsmConf: string | undefined;
  users: number;
  /** False when another thread of this process initialized the module: never finalize it then. */
  ownsInitialize: boolean;
}

const loaded = new Map<string, LoadedModule>();

function loadModule(cfg: ResolvedHsmConfig): LoadedModule {
  const existing = loaded.get(cfg.modulePath);
  if (existing !== undefined) {
    if (existing.softhsmConf !== cfg.softhsmConf) {
      throw new HsmError("CONFIG_INVALID",
        "this process already initialized the module with another softhsmConf: one token directory per process");
    }
    existing.users++;
    return existing;
  }
  if (cfg.softhsmConf !== undefined) process.env.SOFTHSM2_CONF = cfg.softhsmConf;
  const p11 = new pkcs11js.PKCS11();
  try {
    p11.load(cfg.modulePath);
  } catch {
    throw new HsmError("MODULE_LOAD_FAILED", `cannot load the PKCS#11 module ${cfg.modulePath}`);
  }
  let ownsInitialize = true;
  try {
    p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (err) {
    if (ckrName(err) !== "CKR_CRYPTOKI_ALREADY_INITIALIZED") {
      p11.close();
      const e = toHsmError(err, "C_Initialize");
      throw new HsmError("MODULE_LOAD_FAILED", e.message, e.ckr);
    }
    ownsInitialize = false; // another worker thread of this process initialized it
  }
  const mod: LoadedModule = { p11, softhsmConf: cfg.softhsmConf, users: 1, ownsInitialize };
  loaded.set(cfg.modulePath, mod);
  return mod;
}

function unloadModule(path: string, mod: LoadedModule): void {
  if (--mod.users > 0) return;
  loaded.delete(path);
  if (mod.ownsInitialize) {
    try { mod.p11.C_Finalize(); } catch { /* already finalized */ }
  }
  mod.p11.close();
}

/** The slot of the one initialized token whose label is `label`. */
function findSlotByLabel(p11: PKCS11, label: string): Handle {
  const matches: Handle[] = [];
  for (const slot of p11.C_GetSlotList(true)) {
    const info = p11.C_GetTokenInfo(slot);
    const initialized = (info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) !== 0;
    if (initialized && info.label.trimEnd() === label) matches.push(slot);
  }
  if (matches.length > 1) {
    throw new HsmError("CONFIG_INVALID", `more than one token is labelled '${label}'`);
  }
  const slot = matches[0];
  if (slot === undefined) throw new HsmError("TOKEN_NOT_FOUND", `no initialized token is labelled '${label}'`);
  return slot;
}

export class Token {
  readonly p11: PKCS11;
  private readonly mod: LoadedModule;
  private readonly modulePath: string;
  private readonly all: Handle[] = [];
  private readonly idle: Handle[] = [];
  private readonly waiters: { resolve: (s: Handle) => void; reject: (e: Error) => void }[] = [];
  private closed = false;

  private constructor(mod: LoadedModule, modulePath: string) {
    this.mod = mod;
    this.p11 = mod.p11;
    this.modulePath = modulePath;
  }

  /** Loads the module, finds the token by label, opens `cfg.sessions` sessions and logs in. */
  static open(cfg: ResolvedHsmConfig, pin: string): Token {
    const mod = loadModule(cfg);
    const token = new Token(mod, cfg.modulePath);
    try {
      const slot = findSlotByLabel(mod.p11, cfg.tokenLabel);
      token.openSessions(slot, cfg.sessions);
      token.login(pin);
    } catch (err) {
      token.close();
      throw toHsmError(err, "opening the token");
    }
    return token;
  }

  private openSessions(slot: Handle, n: number): void {
    const flags = pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION;
    for (let i = 0; i < n; i++) {
      const s = this.p11.C_OpenSession(slot, flags);
      this.all.push(s);
      this.idle.push(s);
    }
  }

  private login(pin: string): void {
    const first = this.all[0];
    if (first === undefined) throw new HsmError("CONFIG_INVALID", "no session to log in with");
    try {
      this.p11.C_Login(first, pkcs11js.CKU_USER, pin);
    } catch (err) {
      // Login state is per application: another Token of this process may have logged in.
      if (ckrName(err) !== "CKR_USER_ALREADY_LOGGED_IN") throw toHsmError(err, "C_Login");
    }
  }

  /** All sessions of the pool (for setup work done once per session). */
  get sessions(): readonly Handle[] {
    return this.all;
  }

  /** Runs fn with a session of its own; waits while all sessions are busy. */
  async withSession<T>(fn: (session: Handle) => Promise<T> | T): Promise<T> {
    const session = await this.acquire();
    try {
      return await fn(session);
    } finally {
      this.release(session);
    }
  }

  private acquire(): Promise<Handle> {
    if (this.closed) return Promise.reject(new HsmError("CLOSED", "the HSM handle is closed"));
    const s = this.idle.pop();
    if (s !== undefined) return Promise.resolve(s);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private release(session: Handle): void {
    const next = this.waiters.shift();
    if (next !== undefined) next.resolve(session);
    else this.idle.push(session);
  }

  /** Closes every session and, for the last user of the module, finalizes it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(new HsmError("CLOSED", "the HSM handle is closed"));
    for (const s of this.all) {
      try { this.p11.C_CloseSession(s); } catch { /* already gone */ }
    }
    this.all.length = 0;
    this.idle.length = 0;
    unloadModule(this.modulePath, this.mod);
  }
}
