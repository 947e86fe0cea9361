// node/vault must be deterministic: it imports proto/crypto, @noble, createHash
// from node:crypto and its own modules only, and touches no clock, timer, randomness or process state.
import test from "ava";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const DIR = join(import.meta.dirname, "../../node/vault");
const sources = readdirSync(DIR)
  .filter((f) => f.endsWith(".ts"))
  .map((f) => ({ file: f, text: readFileSync(join(DIR, f), "utf8") }));

test("node/vault imports only proto/crypto, @noble, node:crypto createHash and itself", (t) => {
  t.true(sources.length >= 8);
  for (const { file, text } of sources) {
    for (const m of text.matchAll(/from\s+"([^"]+)"/g)) {
      const spec = m[1] ?? "";
      const allowed = spec.startsWith("./") || spec === "../../proto/crypto/index.js" || spec.startsWith("@noble/hashes/")
        || spec === "@noble/curves/ed25519.js" /* Ed25519 client tokens, jwt.ts */ || spec === "node:crypto";
      t.true(allowed, `${file} imports ${spec}`);
    }
    // node:crypto for its SHA-256 only (snapshot checksum, state digest): nothing random.
    for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s+"node:crypto"/g)) {
      t.deepEqual((m[1] ?? "").split(",").map((x) => x.trim()).filter((x) => x !== ""), ["createHash"], `${file} imports more than createHash from node:crypto`);
    }
  }
});

test("node/vault reads no clock, timer, randomness or process state", (t) => {
  const forbidden = [/\bDate\b/, /Math\.random/, /\bsetTimeout\b/, /\bsetInterval\b/, /\bsetImmediate\b/, /\bperformance\b/, /\bprocess\./, /\bimport\(/, /\brequire\(/];
  for (const { file, text } of sources) {
    const code = text.replace(/\/\/.*$/gm, "");
    for (const re of forbidden) t.false(re.test(code), `${file} uses ${re.source}`);
  }
});
