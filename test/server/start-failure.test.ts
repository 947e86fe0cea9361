// The `action` of a `start failed` line (node/server/start-failure.ts): what
// to do, for the causes whose error message does not say it.
import test from "ava";
import { startFailureAction } from "../../node/server/start-failure.js";
import { HsmError } from "../../node/hsm/index.js";
import { StorageError, StorageFailedError, WalCorruptError } from "../../node/storage/index.js";
import { ConfigError } from "../../node/server/config.js";

const cfg = { clientListen: "127.0.0.1:7101", peerListen: "0.0.0.0:7201", adminListen: "127.0.0.1:7301", metricsListen: "", dataDir: "/var/lib/bkv" };
const listenError = (code: string, address: string) => Object.assign(new Error(`listen ${code}: address already in use ${address}`), { code });

test("a port in use names the setting that holds it", (t) => {
  t.regex(startFailureAction(listenError("EADDRINUSE", "127.0.0.1:7101"), cfg) ?? "", /^clientListen \(127\.0\.0\.1:7101\) is in use by another process/);
  t.regex(startFailureAction(listenError("EADDRINUSE", "0.0.0.0:7201"), cfg) ?? "", /^peerListen \(0\.0\.0\.0:7201\) is in use/);
  t.regex(startFailureAction(listenError("EADDRINUSE", "[::]:7301"), cfg) ?? "", /^adminListen \(\[::\]:7301\) is in use/, "matched by port when the address reads otherwise");
  t.regex(startFailureAction(listenError("EACCES", "0.0.0.0:443"), cfg) ?? "", /^0\.0\.0\.0:443 may not be bound by this user/);
});

test("HSM failures say which setting to check; a wrong PIN warns against a restart loop", (t) => {
  t.regex(startFailureAction(new HsmError("PIN_INCORRECT", "C_Login failed", "CKR_PIN_INCORRECT"), cfg) ?? "", /hsm\.pinFile .*do not let the node restart in a loop/);
  t.regex(startFailureAction(new HsmError("TOKEN_NOT_FOUND", "no initialized token is labelled 'x'"), cfg) ?? "", /hsm\.tokenLabel .*hsm\.softhsmConf/);
  t.regex(startFailureAction(new HsmError("MODULE_LOAD_FAILED", "cannot load"), cfg) ?? "", /hsm\.module/);
});

test("a damaged data dir says to keep it and replace the node under a new id; a failed write says to free space; errors that say it get none", (t) => {
  t.regex(startFailureAction(new WalCorruptError("/d/raft/wal/x.wal", 10, "CRC32C mismatch"), cfg) ?? "", /keep it for analysis .*replace this node: bkv admin remove ID, and a new node under a new id/);
  t.regex(startFailureAction(new StorageError("x"), cfg) ?? "", /never edit or truncate its files by hand/);
  t.regex(startFailureAction(new StorageFailedError("ENOSPC"), cfg) ?? "", /free space/);
  t.is(startFailureAction(new ConfigError("tls.key", "x"), cfg), undefined);
  t.is(startFailureAction("a string", cfg), undefined);
});

test("a data dir this process may not write says whose it must be; a file in its place says so", (t) => {
  const denied = (path: string, code = "EACCES") => Object.assign(new Error(`${code}: permission denied, open '${path}'`), { code, path });
  t.regex(startFailureAction(denied("/var/lib/bkv/raft/wal/0000000000000000-0000000000000001.wal"), cfg) ?? "", /^the data dir \/var\/lib\/bkv must be writable by this process .*chown -R.*fsGroup/);
  t.regex(startFailureAction(denied("/var/lib", "EROFS"), cfg) ?? "", /must be writable/, "its parent, when the dir is created");
  t.is(startFailureAction(denied("/etc/bkv/ca.crt"), cfg), undefined, "a file elsewhere: the message says which");
  t.regex(startFailureAction(denied("/var/lib/bkv", "EEXIST"), cfg) ?? "", /^\/var\/lib\/bkv is a file where the data dir \/var\/lib\/bkv needs a directory/);
});
