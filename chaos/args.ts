// The command lines of the chaos CLIs (chaos, chaos:k8s, chaos:recheck): flags, values, exit codes.

/** The exit codes of the chaos CLIs (chaos, chaos:k8s, chaos:recheck); an interrupted run exits 128 + the signal's number. */
export const CHAOS_EXIT = { OK: 0, VIOLATIONS: 1, NO_RUN: 2, USAGE: 64 } as const;

/** A mistake in the command line: printed with the usage, exit CHAOS_EXIT.USAGE. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * Walks `--flag [value]` and `--flag=value` arguments, calling `onFlag` once per flag with readers of its
 * value: `val()` takes the inline or the next argument (throws "`flag` needs a value" when there is none
 * or it is itself a `--flag`: a forgotten value must not swallow the next flag), `int(lo, hi)` takes it
 * as a decimal integer in lo..hi (not "1e1", "0x10" or " 5"). Every error is a UsageError.
 */
export function walkArgs(
  argv: readonly string[],
  onFlag: (flag: string, val: () => string, int: (lo: number, hi: number) => number) => void,
): void {
  for (let i = 0; i < argv.length; i++) {
    const [a, inline] = splitInline(argv[i]!);
    let took = false;
    const val = (): string => {
      took = true;
      const v = inline ?? argv[++i];
      if (v === undefined || v === "" || (inline === undefined && v.startsWith("--"))) throw new UsageError(`${a} needs a value`);
      return v;
    };
    const int = (lo: number, hi: number): number => {
      const v = val();
      const n = /^\d{1,9}$/.test(v) ? Number(v) : NaN;
      if (!(n >= lo && n <= hi)) throw new UsageError(`${a} must be an integer in ${lo}..${hi}, got ${JSON.stringify(v)}`);
      return n;
    };
    onFlag(a, val, int);
    if (inline !== undefined && !took) throw new UsageError(`${a} takes no value`);
  }
}

/** "--flag=value" as ["--flag", "value"]; anything else as [arg, undefined]. */
function splitInline(arg: string): [string, string | undefined] {
  const eq = arg.indexOf("=");
  return arg.startsWith("--") && eq > 2 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
}

/** A seed as the run's directory name may hold it: 1-64 letters, digits, . _ - (and not "." or ".."). */
export function seedArg(v: string): string {
  if (!/^[\w.-]{1,64}$/.test(v) || /^\.+$/.test(v)) throw new UsageError("--seed must be 1-64 letters, digits, . _ - (not only dots)");
  return v;
}
