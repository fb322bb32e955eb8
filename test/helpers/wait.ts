/**
 * Polls a predicate until it holds, instead of sleeping for a fixed time. Rejects with `what` after timeoutMs.
 * A predicate that throws is retried, unless `rethrow` is set: then the wait fails at once with that error.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string; rethrow?: boolean } = {},
): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      if (opts.rethrow) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'condition'}${reason}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Polls `probe` every 10 ms until it returns a truthy value; a probe that throws fails the wait at once. */
export function until<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 10_000): Promise<NonNullable<T>> {
  return waitFor(probe, { what, timeoutMs, intervalMs: 10, rethrow: true });
}
