import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openLedger, MIGRATIONS } from '../../src/ledger/sqlite.js';
import { walkTo } from '../helpers/ledger-walk.js';

const sa = (id: string, identity?: string) => ({
  id,
  scheduledAnalysisUrl: `http://m/api/scheduled_analysis/${id}/`,
  sampleUrl: `http://m/api/sample/s${id}/`,
  ...(identity === undefined ? {} : { identity }),
});

test('a ledger from before identities were recorded: its jobs belong to the first identity, new claims record theirs', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-identity-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'bridge.sqlite');
  // A ledger as the previous schema (v4) left it, with one unfinished job.
  const raw = new Database(path);
  for (let v = 0; v < 4; v++) raw.exec(MIGRATIONS[v]);
  raw.pragma('user_version = 4');
  raw.prepare(`INSERT INTO jobs (id, scheduled_analysis_url, sample_url, state, created_at, updated_at, state_since) VALUES ('old', 'u', 's', 'waiting', 1, 1, 1)`).run();
  raw.close();

  const ledger = openLedger(path);
  t.after(() => ledger.close());
  assert.equal(ledger.get('old')?.identity, 'default');
  assert.equal(ledger.claim(sa('n1', 'lab-2'), 10).job.identity, 'lab-2');
  assert.equal(ledger.claim(sa('n2', 'lab-2'), 11).job.identity, 'lab-2');
  // A second claim of the same scheduled analysis (another identity's poll) does not take it over.
  const again = ledger.claim(sa('n1', 'third'), 12);
  assert.equal(again.created, false);
  assert.equal(again.job.identity, 'lab-2');
  assert.deepEqual(ledger.inFlightByIdentity(), { default: 1, 'lab-2': 2 });

  walkTo(ledger, 'n2', 'done', 20);
  ledger.update('n2', { state: 'done' }, { type: 'report-sent' }, 21);
  assert.deepEqual(ledger.inFlightByIdentity(), { default: 1, 'lab-2': 1 });
  assert.equal(ledger.get('n2')?.identity, 'lab-2', 'the claiming identity is kept when the job finishes');
});
