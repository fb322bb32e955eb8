/**
 * Counts failed ledger writes (disk full, I/O error, a lock held past busy_timeout) for the
 * `massal_ledger_write_errors_total` counter. The error itself still reaches the caller unchanged.
 */
import type { Ledger } from './types.js';

/** The Ledger methods that write. */
export const LEDGER_WRITES = [
  'claim',
  'update',
  'appendEvent',
  'storeMessages',
  'markMessageProcessed',
  'recordRelatedSample',
  'recordRelation',
  'recordOwnSample',
  'forgetOwnSample',
  'prune',
  'flush',
] as const satisfies ReadonlyArray<keyof Ledger>;

/** `ledger` with each write method counting the calls that throw (or, for `flush`, reject); `writeErrors()` reads the count. */
export function countWriteErrors<L extends Ledger>(ledger: L): L & { writeErrors(): number } {
  let errors = 0;
  const out = ledger as L & { writeErrors(): number };
  for (const name of LEDGER_WRITES) {
    const write = ledger[name] as (...args: unknown[]) => unknown;
    (out as unknown as Record<string, unknown>)[name] = (...args: unknown[]): unknown => {
      try {
        const out = write.apply(ledger, args);
        // flush() fails asynchronously (its commit runs later).
        if (out instanceof Promise) {
          return out.catch((err: unknown) => {
            errors++;
            throw err;
          });
        }
        return out;
      } catch (err) {
        errors++;
        throw err;
      }
    };
  }
  out.writeErrors = () => errors;
  return out;
}
