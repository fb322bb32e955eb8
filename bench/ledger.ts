/**
 * Ledger: N ops of claim + update (patch + event, one transaction) + appendEvent on the SQLite ledger
 * (WAL, synchronous FULL) in a temp file, vs a baseline of N raw autocommit INSERTs into a plain table
 * on a connection with the ledger's settings (src/ledger/sqlite.ts openLedger pragmas).
 */
import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLedger } from '../src/ledger/sqlite.js';
import { envInt, fmtNum, fmtRatio, type BenchOutcome, type Say } from './lib.js';

/** Commits per ledger op: claim (job + claimed event), update (row + event), appendEvent (autocommit). */
const COMMITS_PER_OP = 3;

/** Regression guard: a ledger op (3 commits) runs at least at this fraction of a raw INSERT (0.15× measured when set). */
const MIN_RATIO = 0.1;

export async function benchLedger(say: Say): Promise<BenchOutcome> {
  const n = envInt('BENCH_LEDGER_N', 10_000);
  const dir = await mkdtemp(join(tmpdir(), 'mass-al-bridge-bench-ledger-'));
  try {
    // Baseline: the same pragmas as openLedger, one plain INSERT per op.
    const raw = new Database(join(dir, 'raw.sqlite'));
    raw.pragma('journal_mode = WAL');
    raw.pragma('synchronous = FULL');
    raw.pragma('busy_timeout = 5000');
    raw.pragma('foreign_keys = ON');
    const mode = raw.pragma('journal_mode', { simple: true });
    raw.exec('CREATE TABLE plain (id TEXT PRIMARY KEY, sample_url TEXT NOT NULL, state TEXT NOT NULL, at INTEGER NOT NULL)');
    const insert = raw.prepare('INSERT INTO plain (id, sample_url, state, at) VALUES (?, ?, ?, ?)');
    const t0 = performance.now();
    for (let i = 0; i < n; i++) insert.run(`sa-${i}`, `http://127.0.0.1/api/sample/${i}/`, 'claimed', i);
    const rawSeconds = (performance.now() - t0) / 1000;
    const rawRows = (raw.prepare('SELECT COUNT(*) AS c FROM plain').get() as { c: number }).c;
    raw.close();

    const ledger = openLedger(join(dir, 'bridge.sqlite'));
    const t1 = performance.now();
    for (let i = 0; i < n; i++) {
      const id = `sa-${i}`;
      const now = 1_700_000_000_000 + i;
      ledger.claim({ id, scheduledAnalysisUrl: `http://127.0.0.1/api/scheduled_analysis/${i}/`, sampleUrl: `http://127.0.0.1/api/sample/${i}/` }, now);
      ledger.update(
        id,
        { state: 'fetching', sha256: i.toString(16).padStart(64, '0'), fileName: `bench-${i}.bin`, fileSize: 1024, sampleCls: 'Sample.FileSample' },
        { type: 'fetched', data: { attempt: 1 } },
        now,
      );
      ledger.appendEvent(id, { type: 'note', message: 'bench' }, now);
    }
    const ledgerSeconds = (performance.now() - t1) / 1000;
    const c = ledger.countByState();
    const events = ledger.events('sa-0').length;
    const size = ledger.sizeBytes();
    ledger.close();

    const ok = rawRows === n && c.fetching === n && events === 3 && String(mode) === 'wal';
    const rawOps = n / rawSeconds;
    const ledgerOps = n / ledgerSeconds;
    const ratio = ledgerOps / rawOps;
    say(`ledger: ${n} ops, temp files, journal_mode ${String(mode)}, synchronous FULL`);
    say(`ledger: raw INSERT           ${fmtNum(rawOps, 0)} ops/s (${fmtNum((rawSeconds / n) * 1e6, 0)} µs/op, 1 commit/op)`);
    say(`ledger: claim+update+event   ${fmtNum(ledgerOps, 0)} ops/s (${fmtNum((ledgerSeconds / n) * 1e6, 0)} µs/op, ${COMMITS_PER_OP} commits/op, 3 events/job); ledger on disk ${(size / 1048576).toFixed(1)} MiB`);
    say(`ledger: a ledger op runs at ${fmtRatio(ratio)} the rate of a raw INSERT (${fmtRatio((ledgerOps * COMMITS_PER_OP) / rawOps)} per commit)`);
    say(`ledger: check: ${n} raw rows, ${c.fetching} jobs in state fetching, 3 events on a job: ${ok ? 'OK' : 'FAILED'}`);
    return {
      ok,
      rows: [{ bench: `ledger: ${n} ops (SQLite WAL)`, baseline: `raw INSERT ${fmtNum(rawOps, 0)}/s`, measured: `claim+upd+event ${fmtNum(ledgerOps, 0)}/s`, ratio: fmtRatio(ratio), target: `≥ ${fmtRatio(MIN_RATIO)}`, met: ratio >= MIN_RATIO }],
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
