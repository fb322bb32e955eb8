/** Moves a ledger job to the state just before `target` along transitions the state table allows (for tests that set up jobs). */
import { canTransition, STATE_TABLE } from '../../src/bridge/states.js';
import type { JobState, Ledger } from '../../src/ledger/types.js';

/** Shortest allowed path from `from` to `to` (both included), or null. */
export function pathTo(from: JobState, to: JobState): JobState[] | null {
  const prev = new Map<JobState, JobState | null>([[from, null]]);
  const queue: JobState[] = [from];
  while (queue.length > 0) {
    const s = queue.shift()!;
    if (s === to && s !== from) break;
    for (const n of STATE_TABLE[s].next) {
      if (prev.has(n)) continue;
      prev.set(n, s);
      queue.push(n);
    }
  }
  if (from === to) return canTransition(from, to) ? [from] : null;
  if (!prev.has(to)) return null;
  const path: JobState[] = [];
  for (let s: JobState | null = to; s !== null; s = prev.get(s) ?? null) path.unshift(s);
  return path;
}

/** Walks job `id` through the intermediate states towards `target` (events of type `test-walk`), leaving the last step to the caller. */
export function walkTo(ledger: Ledger, id: string, target: JobState, now: number): void {
  const job = ledger.get(id);
  if (!job) throw new Error(`no job ${id}`);
  const path = pathTo(job.state, target);
  if (!path) throw new Error(`no allowed path ${job.state} → ${target}`);
  for (const s of path.slice(1, -1)) ledger.update(id, { state: s }, { type: 'test-walk' }, now);
}
