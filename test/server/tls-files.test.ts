// The node's TLS files checked at start (node/server/tls-files.ts): each
// mistake is a ConfigError naming the setting and the file, never the key.
import { execFileSync } from "node:child_process";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import test from "ava";
import { ConfigError } from "../../node/server/config.js";
import { loadNodeTls } from "../../node/server/tls-files.js";
import { fileTempDir } from "../temp.js";

const ROOT = resolve(import.meta.dirname, "../..");
const dir = fileTempDir("bkv-tls-files-");
const makeCerts = (out: string, ...ids: string[]) => execFileSync("bash", [join(ROOT, "deploy/certs/make-certs.sh"), out, ...ids], { stdio: "ignore" });
makeCerts(join(dir, "a"), "1", "2");
makeCerts(join(dir, "b"), "1");

const files = (over: Partial<Record<"ca" | "cert" | "key", string>> = {}) => ({
  ca: join(dir, "a/ca.crt"), cert: join(dir, "a/node-1.crt"), key: join(dir, "a/node-1.key"), ...over,
});

test("the node's own CA, certificate and key load", (t) => {
  const m = loadNodeTls(files());
  t.deepEqual(m.key, readFileSync(join(dir, "a/node-1.key")));
});

test("each mistake names the setting and the file", (t) => {
  writeFileSync(join(dir, "garbage.pem"), "garbage\n");
  copyFileSync(join(dir, "a/node-1.key"), join(dir, "key-copy.key"));
  const cases: Array<[ReturnType<typeof files>, RegExp]> = [
    [files({ key: join(dir, "missing.key") }), /^config: tls\.key file .*missing\.key cannot be read \(ENOENT\)$/],
    [files({ cert: join(dir, "garbage.pem") }), /^config: tls\.cert file .*garbage\.pem holds no PEM certificate$/],
    [files({ ca: join(dir, "garbage.pem") }), /^config: tls\.ca file .*garbage\.pem holds no PEM certificate$/],
    [files({ key: join(dir, "garbage.pem") }), /^config: tls\.key file .*garbage\.pem holds no PEM private key$/],
    [files({ key: join(dir, "a/node-2.key") }), /^config: tls\.key file .*node-2\.key is not the key of the certificate in .*a\/node-1\.crt \(tls\.cert\)$/],
    [files({ cert: join(dir, "b/node-1.crt"), key: join(dir, "b/node-1.key") }), /^config: tls\.cert certificate .*b\/node-1\.crt is not signed by a CA in .*a\/ca\.crt \(tls\.ca\)$/],
  ];
  const key = readFileSync(join(dir, "a/node-1.key"), "utf8");
  for (const [f, re] of cases) {
    const err = t.throws(() => loadNodeTls(f), { instanceOf: ConfigError });
    t.regex(err?.message ?? "", re);
    t.false(err?.message.includes(key.split("\n")[1]!), "never the key's contents");
  }
});

test("a CA bundle (old and new CA, as during a CA rotation) takes a certificate from either of its CAs", (t) => {
  const bundle = join(dir, "bundle.crt");
  writeFileSync(bundle, Buffer.concat([readFileSync(join(dir, "a/ca.crt")), readFileSync(join(dir, "b/ca.crt"))]));
  t.notThrows(() => loadNodeTls(files({ ca: bundle, cert: join(dir, "b/node-1.crt"), key: join(dir, "b/node-1.key") })));
  t.notThrows(() => loadNodeTls(files({ ca: bundle })));
});

test("a certificate outside its validity period is refused with the date", (t) => {
  t.throws(() => loadNodeTls(files(), Date.now() + 100 * 365 * 86_400_000), { instanceOf: ConfigError, message: /^config: tls\.cert certificate .* expired on .*: renew it/ });
  t.throws(() => loadNodeTls(files(), 0), { instanceOf: ConfigError, message: /is not valid before .*: check this host's clock/ });
});
