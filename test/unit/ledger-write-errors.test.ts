/** Failed ledger writes are counted and exported as massal_ledger_write_errors_total; the error still reaches the caller. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLedger } from '../../src/ledger/sqlite.js';
import { createMetrics } from '../../src/metrics.js';

test('a write that fails is counted once, reads are not, and the counter only grows', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-errors-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ledger = openLedger(join(dir, 'bridge.sqlite'));
  ledger.claim({ id: 'sa-1', scheduledAnalysisUrl: 'http://mass/sa/1/', sampleUrl: 'http://mass/s/1/' }, 1000);
  ledger.appendEvent('sa-1', { type: 'note' }, 1001);
  assert.equal(ledger.writeErrors?.(), 0);

  const metrics = createMetrics({ collectProcessMetrics: false });
  const scrape = async () => {
    metrics.setLedgerGauges({ byState: ledger.countByState(), inFlight: 0, ledgerBytes: 0, writeErrors: ledger.writeErrors?.() });
    return /^massal_ledger_write_errors_total (\d+)$/m.exec(await metrics.registry.metrics())?.[1];
  };
  assert.equal(await scrape(), '0');

  ledger.close(); // every write now fails, as on a lost disk
  assert.throws(() => ledger.appendEvent('sa-1', { type: 'note' }, 1002));
  assert.throws(() => ledger.claim({ id: 'sa-2', scheduledAnalysisUrl: 'http://mass/sa/2/', sampleUrl: 'http://mass/s/2/' }, 1003));
  assert.throws(() => ledger.get('sa-1'), 'reads fail too, but are not writes');
  assert.equal(ledger.writeErrors?.(), 2);
  metrics.setLedgerGauges({ byState: { claimed: 0 } as never, inFlight: 0, ledgerBytes: 0, writeErrors: 2 });
  assert.equal(/^massal_ledger_write_errors_total (\d+)$/m.exec(await metrics.registry.metrics())?.[1], '2');
  metrics.setLedgerGauges({ byState: { claimed: 0 } as never, inFlight: 0, ledgerBytes: 0, writeErrors: 2 });
  assert.equal(/^massal_ledger_write_errors_total (\d+)$/m.exec(await metrics.registry.metrics())?.[1], '2', 'not counted twice');
});
