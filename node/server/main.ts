#!/usr/bin/env node
// bkv-node --config FILE (from the sources: `tsx node/server/main.ts --config
// FILE`); env BKV_* overrides the file (docs/operations.md). JSON logs on
// stdout; SIGTERM/SIGINT stop the node gracefully (leadership transfer,
// drain, flush, HSM close), within a deadline (signal-stop.ts).
import { statfsSync } from "node:fs";
import { parseArgs } from "node:util";
import { CONFIG_ENV_VARIABLES, ConfigError, loadConfig } from "./config.js";
import { jsonLogger } from "./log.js";
import { VaultNode } from "./node.js";
import { signalStop } from "./signal-stop.js";
import { startFailureAction } from "./start-failure.js";

const USAGE = `Usage: bkv-node --config FILE

Runs one bkv vault node. Every setting can also come from a BKV_* environment
variable, which overrides the file (docs/operations.md lists them). The HSM PIN
comes from a file (hsm.pinFile / BKV_HSM_PIN_FILE) or BKV_HSM_PIN, never a flag.
`;

/** The --config value, or exits with usage (64) on bad arguments or none at all (no --config, no BKV_* variable), 0 on --help. */
function parseCommandLine(): string | undefined {
  try {
    const { values } = parseArgs({ options: { config: { type: "string" }, help: { type: "boolean", short: "h" } }, strict: true });
    if (values.help === true) {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    if (values.config === undefined && !CONFIG_ENV_VARIABLES.some((name) => process.env[name] !== undefined)) {
      process.stderr.write(`bkv-node: no configuration: --config FILE is required (or BKV_* variables for every required setting)\n\n${USAGE}`);
      process.exit(64);
    }
    return values.config;
  } catch (err) {
    // A stray positional argument may be a secret typed in the wrong place: never echo it.
    const positional = (err as { code?: string }).code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL";
    const reason = positional ? "unexpected argument (not shown)" : (err as Error).message;
    process.stderr.write(`bkv-node: ${reason}\n\n${USAGE}`);
    process.exit(64);
  }
}

/**
 * The free and total bytes of the file system holding `dir`, for the fatal
 * line: a store or WAL write that fails on a full disk does not always say
 * so (lmdb reports "Input/output error"). Empty when statfs fails.
 */
function dataDirSpace(dir: string): { dataDirFreeBytes?: number; dataDirTotalBytes?: number } {
  try {
    const s = statfsSync(dir);
    return { dataDirFreeBytes: s.bavail * s.bsize, dataDirTotalBytes: s.blocks * s.bsize };
  } catch {
    return {};
  }
}

async function main(): Promise<void> {
  const configPath = parseCommandLine();
  let cfg;
  try {
    cfg = loadConfig(configPath);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`bkv-node: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let node: VaultNode | null = null;
  const log = jsonLogger(cfg.logLevel, { node: cfg.nodeId }, () => node?.logContext() ?? {});
  const fatal = (err: unknown) => {
    log.error("fatal error: stopping", { error: err, ...dataDirSpace(cfg.dataDir) });
    process.exit(1);
  };
  // How long the process took to load its code (under tsx: to transpile it) before this line.
  log.info("starting", { pid: process.pid, loadMs: Math.round(performance.now()) });
  const vaultNode = new VaultNode(cfg, log, fatal);
  node = vaultNode;
  const stop = signalStop({ stop: () => vaultNode.stop(), log, fatal, exit: (code) => process.exit(code) });
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  try {
    await vaultNode.start();
  } catch (err) {
    const action = startFailureAction(err, cfg);
    log.error("start failed", { error: err, ...(action === undefined ? {} : { action }) });
    process.exit(err instanceof ConfigError ? 2 : 1); // a setting found wrong only at start (a TLS file, auth) is a config error too
  }
}

void main();
