import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { BridgeError } from '../../src/errors.js';
import type { BridgeConfig } from '../../src/config/types.js';
import { assemblylineClientOptionsFromConfig } from '../../src/assemblyline/options.js';
import { makeTlsFixture } from '../helpers/tls.js';

function settings(over: Partial<BridgeConfig['assemblyline']>): BridgeConfig['assemblyline'] {
  return {
    url: 'https://al.example.org', user: 'mass-bridge', apiKey: 'bridgekey:secret', password: '', auth: 'apikey',
    clientCert: '', clientKey: '', verifyTls: true, caFile: '', timeout: 60, notificationQueue: 'mass-al-bridge',
    priority: 150, classification: '', services: [], deepScan: false, ttl: 0, neverDrop: true, submissionProfile: '', metadata: {}, bridgeMetadata: true,
    ingestType: 'MASS', uiUrl: '', maxConcurrentCalls: 8, maxFileSize: 104857600, ...over,
  } as BridgeConfig['assemblyline'];
}

test('connection settings become client options with PEM contents and milliseconds', async (t) => {
  const pki = await makeTlsFixture();
  t.after(() => pki.cleanup());
  const opts = await assemblylineClientOptionsFromConfig(
    settings({ auth: 'password', apiKey: '', password: 'pw-secret', caFile: join(pki.dir, 'ca.crt'), clientCert: join(pki.dir, 'client.crt'), clientKey: join(pki.dir, 'client.key'), timeout: 12 }),
  );
  assert.equal(opts.ca, pki.ca);
  assert.equal(opts.clientCert, pki.clientCert);
  assert.equal(opts.clientKey, pki.clientKey);
  assert.equal(opts.timeoutMs, 12_000);
  assert.equal(opts.auth, 'password', 'the certificate goes with password (or API-key) auth');
  assert.equal(opts.password, 'pw-secret');
  assert.equal(opts.apiKey, undefined);

  const apikey = await assemblylineClientOptionsFromConfig(settings({}));
  assert.equal(apikey.apiKey, 'bridgekey:secret');
  assert.equal(apikey.ca, undefined);
  assert.equal(apikey.verifyTls, true);
});

test('unreadable or wrong PEM files are CONFIG_INVALID without their contents in the message', async (t) => {
  const pki = await makeTlsFixture();
  t.after(() => pki.cleanup());
  await assert.rejects(assemblylineClientOptionsFromConfig(settings({ caFile: join(pki.dir, 'missing.pem') })), (e: unknown) => {
    assert.ok(e instanceof BridgeError);
    assert.equal(e.code, 'CONFIG_INVALID');
    assert.match(e.message, /CAFile: cannot read .*missing\.pem: ENOENT/);
    return true;
  });
  await assert.rejects(
    assemblylineClientOptionsFromConfig(settings({ clientCert: join(pki.dir, 'client.key'), clientKey: join(pki.dir, 'client.key') })),
    (e: unknown) => e instanceof BridgeError && e.code === 'CONFIG_INVALID' && !e.message.includes('PRIVATE KEY'),
  );
  await assert.rejects(
    assemblylineClientOptionsFromConfig(settings({ clientCert: join(pki.dir, 'client.crt') })),
    (e: unknown) => e instanceof BridgeError && e.code === 'CONFIG_INVALID',
  );
});
