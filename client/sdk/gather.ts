// Parallel calls to several nodes that should not all wait for the slowest.

export interface Gathered<T> {
  readonly values: T[];
  readonly errors: unknown[];
}

/**
 * Settles `tasks` in parallel and resolves when all have settled, or
 * `graceMs` after the `startAfter`-th one fulfilled (the first by default),
 * with what had settled by then: a black-holed node then costs `graceMs`,
 * not a whole call timeout, and a fast node does not cut the slower ones
 * short before `startAfter` answers are in.
 */
export function gatherWithGrace<T>(tasks: readonly Promise<T>[], graceMs: number, startAfter = 1): Promise<Gathered<T>> {
  const values: T[] = [];
  const errors: unknown[] = [];
  return new Promise((resolve) => {
    let pending = tasks.length;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(timer);
      resolve({ values: [...values], errors: [...errors] });
    };
    if (pending === 0) return finish();
    for (const task of tasks) {
      task.then(
        (v) => {
          values.push(v);
          if (values.length >= startAfter) timer ??= setTimeout(finish, graceMs);
        },
        (e: unknown) => errors.push(e),
      ).finally(() => {
        if (--pending === 0) finish();
      });
    }
  });
}
