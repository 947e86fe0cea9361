// A vault node's HSM: its token, its two keys, evaluation and signing.
import { createHash, randomBytes } from "node:crypto";
import { p256 } from "@noble/curves/nist.js";
import pkcs11js from "pkcs11js";
import {
  type EvaluationFields, G, equalBytes, evaluationSigningMessage, normalizeLowS, randomScalar, wrapShare,
} from "../../proto/crypto/index.js";
import { readPin, resolveConfig, type HsmConfig, type ResolvedHsmConfig } from "./config.js";
import { HsmError, toHsmError } from "./errors.js";
import {
  asyncCalls, evaluateInSession, fromProtocolErrors, parseEvaluationInput, syncCalls, type Calls,
} from "./evaluate.js";
import { findOrGenerateKeyPair, type NodeKeyPair } from "./keys.js";
import { Token, type Handle } from "./token.js";

const P = pkcs11js;

/**
 * How evaluations call the token. "async": the *Async calls on the libuv
 * pool, one pooled session per evaluation in flight (the default: measured
 * best, see docs/hsm.md). "sync": blocking calls on the caller's thread (for
 * worker threads and benchmarks).
 */
export type CallStrategy = "async" | "sync";

export interface HsmOptions {
  strategy?: CallStrategy;
  /** Use a session copy (C_CopyObject, CKA_TOKEN=false) of the agreement key per session. Default true. */
  sessionKeyCopies?: boolean;
}

/** What an evaluation's signature covers besides B and k_i·B (proto/crypto evaluationSigningMessage). */
export type EvaluationAbout = Omit<EvaluationFields, "blinded" | "evaluated">;

/** k_i·B and the identity key's signature over it (an Evaluate answer, DESIGN §5). */
export interface SignedEvaluation {
  evaluated: Uint8Array;
  signature: Uint8Array;
}

export interface HsmStats {
  evaluations: number;
  signatures: number;
  /** Session objects whose C_DestroyObject failed (freed when the session closes). */
  destroyFailures: number;
}

export class Hsm {
  readonly agreementPublicKey: Uint8Array;
  readonly identityPublicKey: Uint8Array;
  /**
   * True when this open generated both key pairs (the token held none: the
   * node's first start on it); false when it found them, i.e. the token
   * already served this node before.
   */
  readonly keysGenerated: boolean;
  readonly stats: HsmStats = { evaluations: 0, signatures: 0, destroyFailures: 0 };
  /** @internal exposed for tests and tools that inspect the token. */
  readonly token: Token;
  /** @internal */
  readonly keys: { agreement: NodeKeyPair; identity: NodeKeyPair };
  private readonly cfg: ResolvedHsmConfig;
  private readonly calls: Calls;
  private readonly agreementBySession = new Map<string, Handle>();

  private constructor(token: Token, cfg: ResolvedHsmConfig, keys: Hsm["keys"], strategy: CallStrategy) {
    this.token = token;
    this.cfg = cfg;
    this.keys = keys;
    this.agreementPublicKey = keys.agreement.publicKey;
    this.identityPublicKey = keys.identity.publicKey;
    this.keysGenerated = keys.agreement.generated && keys.identity.generated;
    this.calls = strategy === "async" ? asyncCalls(token.p11) : syncCalls(token.p11);
  }

  /**
   * Opens the configured token, logs in, creates the node keys at first start
   * (finds them afterwards) and checks that each private key matches its
   * public key.
   */
  static async open(config: HsmConfig, options: HsmOptions = {}): Promise<Hsm> {
    const cfg = resolveConfig(config);
    const token = Token.open(cfg, readPin(config));
    try {
      const session = firstSession(token);
      const keys = {
        agreement: findOrGenerateKeyPair(token.p11, session, "agreement"),
        identity: findOrGenerateKeyPair(token.p11, session, "identity"),
      };
      const hsm = new Hsm(token, cfg, keys, options.strategy ?? "async");
      if (options.sessionKeyCopies ?? true) hsm.copyAgreementKeyPerSession();
      await hsm.selfTest();
      return hsm;
    } catch (err) {
      token.close();
      throw toHsmError(err, "opening the HSM");
    }
  }

  private copyAgreementKeyPerSession(): void {
    for (const s of this.token.sessions) {
      try {
        const copy = this.token.p11.C_CopyObject(s, this.keys.agreement.privateKey, [
          { type: P.CKA_TOKEN, value: false },
        ]);
        this.agreementBySession.set(s.toString("hex"), copy);
      } catch (err) {
        throw toHsmError(err, "copying the agreement key into a session");
      }
    }
  }

  private agreementKeyFor(session: Handle): Handle {
    return this.agreementBySession.get(session.toString("hex")) ?? this.keys.agreement.privateKey;
  }

  /**
   * k_i·B (33-byte compressed) for the share wrapped in `wrappedShare` (format
   * v1), the blinded element `blinded` and the share commitment `commitment`
   * (K_i = k_i·G), both SEC1 points. Inputs are validated before the token
   * sees them; the share exists only as a non-extractable session object.
   */
  async evaluate(wrappedShare: Uint8Array, blinded: Uint8Array, commitment: Uint8Array): Promise<Uint8Array> {
    const out = await this.evaluateUncounted(wrappedShare, blinded, commitment);
    this.stats.evaluations++;
    return out;
  }

  /**
   * evaluate(), then sign() of evaluationSigningMessage over `about`, B and
   * the result: an Evaluate's whole HSM part in one call (on a worker pool,
   * one trip to one thread instead of two).
   */
  async evaluateSigned(wrappedShare: Uint8Array, blinded: Uint8Array, commitment: Uint8Array, about: EvaluationAbout): Promise<SignedEvaluation> {
    const evaluated = await this.evaluate(wrappedShare, blinded, commitment);
    const message = fromProtocolErrors(() => evaluationSigningMessage({ ...about, blinded, evaluated }));
    return { evaluated, signature: await this.sign(message) };
  }

  private evaluateUncounted(wrappedShare: Uint8Array, blinded: Uint8Array, commitment: Uint8Array): Promise<Uint8Array> {
    const input = parseEvaluationInput(wrappedShare, blinded, commitment);
    return this.token.withSession((session) => evaluateInSession({
      p11: this.token.p11,
      calls: this.calls,
      wrapMechanism: this.cfg.wrapMechanism,
      agreementKey: this.agreementKeyFor(session),
      onDestroyFailure: () => { this.stats.destroyFailures++; },
    }, session, input));
  }

  /** ECDSA P-256 over SHA-256(message) with the identity key: 64-byte r||s, low-S. */
  async sign(message: Uint8Array): Promise<Uint8Array> {
    if (!(message instanceof Uint8Array)) throw new HsmError("INVALID_INPUT", "the message to sign must be bytes");
    const sig = await this.signDigest(createHash("sha256").update(message).digest());
    this.stats.signatures++;
    return sig;
  }

  private async signDigest(digest: Buffer): Promise<Uint8Array> {
    const sig = await this.token.withSession(async (session) => {
      try {
        return await this.calls.sign(session, { mechanism: P.CKM_ECDSA }, this.keys.identity.privateKey, digest);
      } catch (err) {
        throw toHsmError(err, "signing");
      }
    });
    return fromProtocolErrors(() => normalizeLowS(sig));
  }

  /** Proves that each private key on the token matches the public key it exports. */
  /**
   * Proves that each private key on the token matches the public key it
   * exports, and that the configured mechanisms work: one full evaluation of
   * a random share wrapped in JS (as a client would), and one signature.
   * Only objects the evaluation itself makes are derived from the agreement
   * key, so this also works on HSMs that enforce a CKA_DERIVE_TEMPLATE.
   */
  private async selfTest(): Promise<void> {
    const k = randomScalar();
    const B = G.multiply(randomScalar());
    let out: Uint8Array;
    try {
      out = await this.evaluateUncounted(wrapShare(this.agreementPublicKey, k), B.toBytes(true), G.multiply(k).toBytes(true));
    } catch (err) {
      if (!(err instanceof HsmError) || err.code !== "WRAPPED_KEY_INVALID") throw err;
      throw new HsmError("KEY_INVALID", "the agreement private key does not match its public key");
    }
    if (!equalBytes(out, B.multiply(k).toBytes(true))) {
      throw new HsmError("KEY_INVALID", "the self-test evaluation returned a wrong point");
    }
    const msg = randomBytes(32);
    const sig = await this.signDigest(createHash("sha256").update(msg).digest());
    if (!p256.verify(sig, msg, this.identityPublicKey, { prehash: true, lowS: true })) {
      throw new HsmError("KEY_INVALID", "the identity private key does not match its public key");
    }
  }

  close(): void {
    this.token.close();
  }
}

function firstSession(token: Token): Handle {
  const s = token.sessions[0];
  if (s === undefined) throw new HsmError("CONFIG_INVALID", "the session pool is empty");
  return s;
}
