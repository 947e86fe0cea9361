// Configuration of a node's PKCS#11 token. The PIN comes from a file or an
// environment variable only: never a command-line flag, never a log line.
import { readFileSync } from "node:fs";
import { HsmError } from "./errors.js";

export const DEFAULT_MODULE_PATH = "/usr/lib/softhsm/libsofthsm2.so";
/** SoftHSM 2.6's number for RFC 5649 AES key wrap with padding (CKM_AES_KEY_WRAP_PAD). */
export const CKM_AES_KEY_WRAP_PAD_SOFTHSM = 0x210a;
/** PKCS#11 3.x's number for RFC 5649 (CKM_AES_KEY_WRAP_KWP), used by most real HSMs. */
export const CKM_AES_KEY_WRAP_KWP = 0x210b;

export interface HsmConfig {
  /** Path of the PKCS#11 module. Default: the Debian SoftHSM2 module. */
  modulePath?: string;
  /** Label of the node's token (the token is found by label, never by slot index). */
  tokenLabel: string;
  /** File holding the user PIN (trailing newline ignored). Exactly one of pinFile/pinEnv. */
  pinFile?: string;
  /** Name of the environment variable holding the user PIN. */
  pinEnv?: string;
  /** RFC 5649 unwrap mechanism number. Default 0x210A (SoftHSM); 0x210B for PKCS#11 3.x. */
  wrapMechanism?: number;
  /**
   * SoftHSM only: path of softhsm2.conf, put into SOFTHSM2_CONF before
   * C_Initialize. SoftHSM reads it once per process, so one process serves
   * exactly one token directory.
   */
  softhsmConf?: string;
  /**
   * Sessions in the pool = evaluations or signatures in flight at once.
   * Default 4: each in-flight *Async call holds one libuv pool thread
   * (UV_THREADPOOL_SIZE, default 4), and more in flight only queue there.
   */
  sessions?: number;
}

export interface ResolvedHsmConfig {
  modulePath: string;
  tokenLabel: string;
  wrapMechanism: number;
  softhsmConf: string | undefined;
  sessions: number;
}

export function resolveConfig(config: HsmConfig): ResolvedHsmConfig {
  const label = config.tokenLabel;
  if (typeof label !== "string" || label.length === 0 || Buffer.byteLength(label) > 32) {
    throw new HsmError("CONFIG_INVALID", "tokenLabel must be 1 to 32 bytes");
  }
  const sessions = config.sessions ?? 4;
  if (!Number.isInteger(sessions) || sessions < 1 || sessions > 256) {
    throw new HsmError("CONFIG_INVALID", "sessions must be an integer in [1, 256]");
  }
  const wrapMechanism = config.wrapMechanism ?? CKM_AES_KEY_WRAP_PAD_SOFTHSM;
  if (!Number.isInteger(wrapMechanism) || wrapMechanism < 0) {
    throw new HsmError("CONFIG_INVALID", "wrapMechanism must be a mechanism number");
  }
  return {
    modulePath: config.modulePath ?? DEFAULT_MODULE_PATH,
    tokenLabel: label,
    wrapMechanism,
    softhsmConf: config.softhsmConf,
    sessions,
  };
}

/** Reads the user PIN from the configured source. The PIN is never put in an error. */
export function readPin(config: HsmConfig): string {
  const { pinFile, pinEnv } = config;
  if ((pinFile === undefined) === (pinEnv === undefined)) {
    throw new HsmError("CONFIG_INVALID", "configure exactly one of pinFile and pinEnv");
  }
  let pin: string | undefined;
  if (pinFile !== undefined) {
    try {
      pin = readFileSync(pinFile, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      throw new HsmError("CONFIG_INVALID", `cannot read the PIN file ${pinFile} (${code})`);
    }
    pin = pin.replace(/\r?\n$/, "");
  } else {
    pin = process.env[pinEnv as string];
    if (pin === undefined) {
      throw new HsmError("CONFIG_INVALID", `environment variable ${pinEnv} (the PIN) is not set`);
    }
  }
  if (pin.length === 0) throw new HsmError("CONFIG_INVALID", "the configured PIN is empty");
  return pin;
}
