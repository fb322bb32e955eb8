import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  AnalysisTimeEstimator, analysisMsOf, FIRST_BACKOFF_MS, initialPacing, MIN_ANALYSIS_TIME_SAMPLES, nextQueueRead, queueReadBurst,
  readAllowedIn, MAX_WAITING_SINCE, WaitingSince, type QueuePacingConfig,
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
      fc.array(
        fc.record({
          jobsWaiting: fc.nat(50), messages: fc.nat(100), early: fc.nat(5000),
          nextExpectedInMs: fc.option(fc.integer({ min: -10_000, max: 10_000_000 })), jobsExpectedLater: fc.nat(60),
          longestWaitMs: fc.option(fc.nat(10_000_000)),
        }),
        { minLength: 1, maxLength: 200 },
      ),
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

const FAST: QueuePacingConfig = { queuePollTimeMs: 5000, readsPerMinute: 1_000_000 };

test('a wave of jobs expected to finish later: the next read waits for the expected finish, not for a backoff read', () => {
  const s0 = initialPacing(FAST, 0);
  // 40 jobs wait, all expected later (none overdue); the first is due in 1 800 ms.
  const d = nextQueueRead({ jobsWaiting: 40, messages: 0, nextExpectedInMs: 1800, jobsExpectedLater: 40 }, s0, 0, FAST);
  assert.equal(d.delayMs, 1800);
  assert.equal(d.state.backoffMs, 0, 'no backoff builds up while nothing is overdue');
  // Beyond QueuePollTime: QueuePollTime still bounds the wait.
  assert.equal(nextQueueRead({ jobsWaiting: 1, messages: 0, nextExpectedInMs: 60_000, jobsExpectedLater: 1 }, s0, 0, FAST).delayMs, 5000);
});

test('an overdue job keeps the backoff going, and the next expected finish brings the read forward', () => {
  let s = initialPacing(FAST, 0);
  const delays: number[] = [];
  let now = 0;
  for (let i = 0; i < 6; i++) {
    // 3 wait, 2 of them expected later: one is overdue; the next expected finish is 700 ms after this read.
    const d = nextQueueRead({ jobsWaiting: 3, messages: 0, nextExpectedInMs: 700, jobsExpectedLater: 2 }, s, now, FAST);
    delays.push(d.delayMs);
    s = d.state;
    now += d.delayMs;
  }
  assert.deepEqual(delays, [50, 100, 200, 400, 700, 700]);
});

test('before any estimate, the backoff stays within half the longest wait so far', () => {
  let s = initialPacing(FAST, 0);
  let now = 0;
  const readsAt: number[] = [];
  // One job started waiting at 0 and its notification comes at 2 000 ms.
  while (now < 2000) {
    const d = nextQueueRead({ jobsWaiting: 1, messages: 0, nextExpectedInMs: null, longestWaitMs: now }, s, now, FAST);
    s = d.state;
    now += d.delayMs;
    readsAt.push(now);
  }
  // Doubling alone reads at 50, 150, 350, 750, 1550, 3150: 1 150 ms late. The cap reads within half.
  assert.ok(now - 2000 <= 1000 && now < 3150, `first read after 2 000 ms at ${now} (${readsAt.join(',')})`);
  // The price: a few more reads in the first seconds; only until the first notifications give an estimate.
  assert.ok(readsAt.length <= 10, `${readsAt.length} reads`);
});

test('analysisMsOf: notify_time minus ingest_time as Assemblyline wrote them, null when either is missing', () => {
  assert.equal(analysisMsOf({ ingest_time: '2026-11-30T10:00:00.000000Z', notify_time: '2026-11-30T10:00:02.500000Z' }), 2500);
  // 4.7 Rust components write up to 9 fractional digits.
  assert.equal(analysisMsOf({ ingest_time: '2026-11-30T10:00:00.123456789Z', notify_time: '2026-11-30T10:01:00.123456789Z' }), 60_000);
  assert.equal(analysisMsOf({ ingest_time: '2026-11-30T10:00:00Z' }), null, 'notify_time exists only since late 2023');
  assert.equal(analysisMsOf({ ingest_time: 'soon', notify_time: '2026-11-30T10:00:00Z' }), null);
  assert.equal(analysisMsOf({ ingest_time: '2026-11-30T10:00:05Z', notify_time: '2026-11-30T10:00:00Z' }), null, 'negative');
  assert.equal(analysisMsOf({ ingest_time: '2026-11-30T10:00:00', notify_time: '2026-11-30T10:00:01Z' }), null, 'no zone: local time');
  assert.equal(analysisMsOf({ ingest_time: '2026-11-30T10:00:00+00:00', notify_time: '2026-11-30T11:00:01+01:00' }), 1000);
});

test('AnalysisTimeEstimator: no estimate before enough notifications, then the 20th percentile of the last 50', () => {
  const e = new AnalysisTimeEstimator();
  for (let i = 0; i < MIN_ANALYSIS_TIME_SAMPLES - 1; i++) e.observe(2000);
  assert.equal(e.estimateMs(), null);
  e.observe(2000);
  assert.equal(e.estimateMs(), 2000);
  // A few cache hits (answered at once) do not pull the estimate down.
  const f = new AnalysisTimeEstimator();
  for (let i = 0; i < 45; i++) f.observe(2000 + i);
  for (let i = 0; i < 5; i++) f.observe(10);
  assert.ok((f.estimateMs() ?? 0) >= 2000, String(f.estimateMs()));
  f.observe(Number.NaN);
  f.observe(-5);
  assert.ok((f.estimateMs() ?? 0) >= 2000, 'bad values are ignored');
  // Only the last 50 count: after 50 observations of 300 ms the earlier 2 s are gone.
  for (let i = 0; i < 50; i++) f.observe(300);
  assert.equal(f.estimateMs(), 300);
});

test('WaitingSince: the next expected finish after a read, forgetting the ones already due', () => {
  const w = new WaitingSince();
  for (const at of [0, 100, 100, 900]) w.add(at);
  w.add(50); // out of order
  assert.equal(w.nextExpectedAfter(0, 2000), 2000);
  assert.equal(w.oldest, 0);
  assert.equal(w.nextExpectedAfter(2000, 2000), 2050, 'the one due at 2 000 is dropped');
  assert.equal(w.nextExpectedAfter(2100, 2000), 2900);
  assert.equal(w.size, 1);
  assert.equal(w.nextExpectedAfter(3000, 2000), null);
  assert.equal(w.size, 0);
  assert.equal(w.oldest, null);
});

test('WaitingSince stays bounded while nothing expires (no estimate yet): the oldest entries go first', () => {
  const w = new WaitingSince();
  for (let i = 0; i < MAX_WAITING_SINCE + 10; i++) w.add(i);
  assert.equal(w.size, MAX_WAITING_SINCE);
  assert.equal(w.oldest, 10);
  assert.equal(w.nextExpectedAfter(0, 5), 15);
});
