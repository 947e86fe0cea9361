// Command-line parsing for `bkv`: a command path (one or two words) and
// --flags, each declared per command. Secrets are never accepted on argv.

/** A usage mistake: printed with the command's help hint, exit code 64. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Ctrl-C at a hidden prompt (the terminal in raw mode sends no SIGINT): exit code 130, as a shell reports SIGINT. */
export class InterruptedError extends Error {
  constructor() {
    super("interrupted");
    this.name = "InterruptedError";
  }
}

export type FlagKind = "boolean" | "string";

export interface CommandSpec {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly flags: Readonly<Record<string, FlagKind>>;
  readonly required?: readonly string[];
  readonly help: string;
}

export interface Parsed {
  readonly flags: Map<string, string | true>;
  readonly help: boolean;
}

/** Flags that would put a secret on the command line (visible in ps, shell history). */
const SECRET_FLAGS = new Set(["password", "pass", "pw", "old-password", "new-password", "key", "backup-key", "pin"]);

export const GLOBAL_FLAGS: Readonly<Record<string, FlagKind>> = { cluster: "string", help: "boolean" };

/** Parses the flags after the command words. */
export function parseFlags(spec: CommandSpec, argv: readonly string[]): Parsed {
  const flags = new Map<string, string | true>();
  const allowed = { ...GLOBAL_FLAGS, ...spec.flags };
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    if (!arg.startsWith("--") || arg === "--") throw new UsageError(`unexpected argument ${JSON.stringify(arg)} for \`bkv ${spec.name}\``);
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    if (SECRET_FLAGS.has(name)) {
      throw new UsageError(`secrets are never read from the command line (--${name}): write them on stdin and pass --password-stdin / --key-stdin / --key-file`);
    }
    const kind = allowed[name];
    if (kind === undefined) throw new UsageError(`unknown option --${name} for \`bkv ${spec.name}\``);
    if (flags.has(name)) throw new UsageError(`--${name} given twice`);
    if (kind === "boolean") {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      flags.set(name, true);
      continue;
    }
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === "" || (eq < 0 && value.startsWith("--"))) throw new UsageError(`--${name} needs a value`);
    flags.set(name, value);
  }
  if (!help) {
    for (const r of spec.required ?? []) if (!flags.has(r)) throw new UsageError(`\`bkv ${spec.name}\` needs --${r}`);
  }
  return { flags, help };
}

/** A string flag's value, or undefined. */
export function stringFlag(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === "string" ? v : undefined;
}

/** An integer flag in [min, max], or undefined. */
export function intFlag(p: Parsed, name: string, min: number, max: number): number | undefined {
  const v = stringFlag(p, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`--${name} must be an integer in [${min}, ${max}]`);
  return Number(v);
}
