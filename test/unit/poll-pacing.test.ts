import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  FIRST_BACKOFF_MS, initialPacing, nextQueueRead, queueReadBurst, readAllowedIn, type QueuePacingConfig,
} from '../../src/bridge/poll-pacing.js';

const DEFAULT: QueuePacingConfig = { queuePollTimeMs: 5000, readsPerMinute: 120 };

test('after a read that brought messages the next read follows at once', () => {
  const s0 = initialPacing(DEFAULT, 0);
  const d = nextQueueRead({ jobsWaiting: 3, messages: 2 }, s0, 0, DEFAULT);
  assert.equal(d.delayMs, 0);
  // Also when nothing waits any more: the queue may hold more.
  assert.equal(nextQueueRead({ jobsWaiting: 0, messages: 1 }, s0, 0, DEFAULT).delayMs, 0);
});

test('empty reads while jobs wait back off from 50 ms, doubling up to QueuePollTime', () => {
  let s = initialPacing({ ...DEFAULT, readsPerMinute: 1_000_000 }, 0);
  const delays: number[] = [];
  let now = 0;
  for (let i = 0; i < 10; i++) {
    const d = nextQueueRead({ jobsWaiting: 5, messages: 0 }, s, now, { ...DEFAULT, readsPerMinute: 1_000_000 });
    delays.push(d.delayMs);
    s = d.state;
    now += d.delayMs;
  }
  assert.deepEqual(delays, [FIRST_BACKOFF_MS, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  // Messages reset the backoff.
  const after = nextQueueRead({ jobsWaiting: 5, messages: 1 }, s, now, { ...DEFAULT, readsPerMinute: 1_000_000 });
  assert.equal(nextQueueRead({ jobsWaiting: 5, messages: 0 }, after.state, now, { ...DEFAULT, readsPerMinute: 1_000_000 }).delayMs, FIRST_BACKOFF_MS);
});

test('nothing waiting: reads every QueuePollTime', () => {
  const d = nextQueueRead({ jobsWaiting: 0, messages: 0 }, initialPacing(DEFAULT, 0), 0, DEFAULT);
  assert.equal(d.delayMs, 5000);
});

test('the budget holds a burst of a sixth of a minute, then paces reads at 60 s / QueueReadsPerMinute', () => {
  assert.equal(queueReadBurst(DEFAULT), 20);
  let s = initialPacing(DEFAULT, 0);
  const delays: number[] = [];
  for (let i = 0; i < 22; i++) {
    const d = nextQueueRead({ jobsWaiting: 9, messages: 100 }, s, 0, DEFAULT);
    delays.push(d.delayMs);
    s = d.state;
    if (d.delayMs > 0) break;
  }
  assert.equal(delays.filter((x) => x === 0).length, 19, 'the 20th read in a burst waits');
  assert.equal(delays.at(-1), 500);
  assert.equal(readAllowedIn(s, 0, DEFAULT), 500);
  assert.equal(readAllowedIn(s, 500, DEFAULT), 0);
});

test('property: reads follow the budget and jobs never wait longer than max(QueuePollTime, 60 s / budget)', () => {
  fc.assert(
    fc.property(
      fc.record({ queuePollTimeMs: fc.integer({ min: 10, max: 3_600_000 }), readsPerMinute: fc.integer({ min: 1, max: 100_000 }) }),
      fc.array(fc.record({ jobsWaiting: fc.nat(50), messages: fc.nat(100), early: fc.nat(5000) }), { minLength: 1, maxLength: 200 }),
      (cfg, reads) => {
        let s = initialPacing(cfg, 0);
        let now = 0;
        const times: number[] = [];
        for (const r of reads) {
          // A reader may be woken early (another loop, a new waiting job): it reads only when the budget allows.
          const wait = readAllowedIn(s, now, cfg);
          now += wait;
          assert.equal(readAllowedIn(s, now, cfg), 0);
          times.push(now);
          const d = nextQueueRead(r, s, now, cfg);
          assert.ok(d.delayMs >= 0);
          if (r.jobsWaiting > 0 || r.messages > 0) {
            assert.ok(d.delayMs <= Math.max(cfg.queuePollTimeMs, Math.ceil(60_000 / cfg.readsPerMinute)), `waited ${d.delayMs} ms`);
          }
          s = d.state;
          now += Math.min(d.delayMs, r.early);
        }
        // Never faster than the cap: any window of T ms holds at most burst + T × budget / 60 000 reads.
        const burst = queueReadBurst(cfg);
        for (let i = 0; i < times.length; i++) {
          for (let j = i; j < times.length; j++) {
            const span = times[j] - times[i];
            assert.ok(j - i + 1 <= burst + (span * cfg.readsPerMinute) / 60_000 + 1e-6, `${j - i + 1} reads in ${span} ms`);
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});
