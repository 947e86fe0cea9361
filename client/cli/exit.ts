// The exit codes of `bkv` (client/cli/main.ts documents them).
export const EXIT = {
  OK: 0, ERROR: 1, WRONG_PASSWORD: 2, LOCKED: 3, RECORD: 4, UNAVAILABLE: 5, INTEGRITY: 6, DESCRIPTOR: 7, IO: 8, CONCURRENT: 9, THROTTLED: 10, RATE_LIMITED: 11, NOT_AUTHORIZED: 12, USAGE: 64, INTERRUPTED: 130,
} as const;
