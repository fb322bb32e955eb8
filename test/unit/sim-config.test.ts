/**
 * The configuration `simulate --write-config` writes: loaded as the bridge would load it, it runs with the defaults
 * where it has no reason to differ, and the locked-down one stays within its own Assemblyline user's daily API quota.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCKED_DOWN_QUOTAS, renderSimulatorIni } from '../../src/commands/sim-config.js';
import { CONFIG_KEYS, loadConfig } from '../../src/config/index.js';

const ENDPOINTS = {
  massOrigin: 'http://127.0.0.1:5000',
  instanceUuid: 'f27f964c-2cc7-4eb9-a0a1-6bfbb32e4d51',
  instanceKey: 'IjSimulatedInstanceKey.sig',
  alOrigin: 'http://127.0.0.1:5001',
  alUser: 'mass-bridge',
  alApiKey: 'bridge:simulated-secret',
  stateDir: '/var/lib/mass-al-bridge',
};

function load(t: TestContext, text: string) {
  const dir = mkdtempSync(join(tmpdir(), 'sim-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'sim.ini');
  writeFileSync(file, text);
  return loadConfig({ file, env: {} }).config;
}

const defaultOf = (key: string): string => CONFIG_KEYS.find((k) => k.section === 'Bridge' && k.key === key)!.default;

test('the written configuration runs with the default Concurrency', (t) => {
  for (const lockedDown of [false, true]) {
    const text = renderSimulatorIni({ ...ENDPOINTS, lockedDown });
    assert.doesNotMatch(text, /^Concurrency\b/m, 'no key that only repeats, or contradicts, the default');
    assert.equal(load(t, text).bridge.concurrency, Number(defaultOf('Concurrency')));
  }
});

test('the locked-down configuration keeps the notification-queue reads under half its daily API quota, and says why', (t) => {
  const text = renderSimulatorIni({ ...ENDPOINTS, lockedDown: true });
  const config = load(t, text);
  const halfQuota = LOCKED_DOWN_QUOTAS.dailyApiCalls / 2;
  const readsPerMinute = config.bridge.queueReadsPerMinute;
  assert.ok(readsPerMinute !== undefined, 'the file sets QueueReadsPerMinute');
  assert.ok(86_400 / config.bridge.queuePollTime <= halfQuota, `idle reads a day (${86_400 / config.bridge.queuePollTime}) within half the quota`);
  assert.ok(
    readsPerMinute * 1440 <= halfQuota,
    `reads a day while jobs wait (${readsPerMinute} a minute) within half the quota of ${LOCKED_DOWN_QUOTAS.dailyApiCalls}`,
  );
  // The comment stands right above the key it explains.
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith('QueueReadsPerMinute = '));
  assert.ok(at > 0);
  const note = lines.slice(0, at).reverse();
  const comment = note.slice(0, note.findIndex((l) => !l.startsWith(';'))).reverse().join(' ');
  assert.match(comment, /QueueReadsPerMinute/);
  assert.match(comment, /quota \/ 1440/);
  assert.match(comment, new RegExp(`${readsPerMinute * 1440} reads a day`));

  // Without the locked-down user there is no quota: the default rate, no note.
  const open = renderSimulatorIni(ENDPOINTS);
  assert.doesNotMatch(open, /QueueReadsPerMinute/);
  assert.equal(load(t, open).bridge.queueReadsPerMinute, Number(defaultOf('QueueReadsPerMinute')));
});

test('a value the caller overrides is written without the note that explained the value it replaced', () => {
  const text = renderSimulatorIni({ ...ENDPOINTS, lockedDown: true, overrides: { Bridge: { QueueReadsPerMinute: 600 } } });
  const lines = text.split('\n');
  const at = lines.indexOf('QueueReadsPerMinute = 600');
  assert.ok(at > 0);
  assert.doesNotMatch(lines[at - 1], /^;/);
});
