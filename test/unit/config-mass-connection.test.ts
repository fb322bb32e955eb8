/** The MASS connection keys: [GLOBAL] ServerAliases and [AssemblylineAnalysis] VerifyTLS / CAFile. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config/index.js';

const env = {
  MASSAL_GLOBAL_SERVERURL: 'https://mass.example.org/',
  MASSAL_ASSEMBLYLINEANALYSIS_UUID: 'f27f964c-2cc7-4eb9-a0a1-6bfbb32e4d51',
  MASSAL_ASSEMBLYLINEANALYSIS_MASS_API_KEY: 'IjMassKey.sig',
  MASSAL_ASSEMBLYLINE_URL: 'https://al.example.org',
  MASSAL_ASSEMBLYLINE_USER: 'bridge',
  MASSAL_ASSEMBLYLINE_APIKEY: 'bridgekey:secret',
};

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.key}: ${p.message}`);
  }
  assert.fail('expected a configuration error');
}

test('ServerAliases takes origins, normalised and without duplicates; defaults are secure', () => {
  const plain = loadConfig({ env }).config;
  assert.deepEqual(plain.global.serverAliases, []);
  assert.equal(plain.mass.verifyTls, true);
  assert.equal(plain.mass.caFile, '');

  const { config } = loadConfig({ env: { ...env, MASSAL_GLOBAL_SERVERALIASES: 'http://MASS-internal:8000, https://mass.lan:443/,http://mass-internal:8000' } });
  assert.deepEqual(config.global.serverAliases, ['http://mass-internal:8000', 'https://mass.lan']);
});

test('ServerAliases refuses anything that is not a bare origin, with the reason', () => {
  const problems = problemsOf(() => loadConfig({ env: { ...env, MASSAL_GLOBAL_SERVERALIASES: 'http://mass-internal:8000/api/' } }));
  assert.ok(problems.some((p) => /^GLOBAL\.ServerAliases: .*origin only/.test(p)), problems.join('\n'));
  const noScheme = problemsOf(() => loadConfig({ env: { ...env, MASSAL_GLOBAL_SERVERALIASES: 'mass-internal' } }));
  assert.ok(noScheme.some((p) => p.startsWith('GLOBAL.ServerAliases: ')), noScheme.join('\n'));
});

test('VerifyTLS = false for MASS and an alias equal to ServerURL are warned about', () => {
  const { warnings } = loadConfig({ env: { ...env, MASSAL_ASSEMBLYLINEANALYSIS_VERIFYTLS: 'false', MASSAL_GLOBAL_SERVERALIASES: 'https://mass.example.org' } });
  const text = warnings.map((w) => `${w.key}: ${w.message}`);
  assert.ok(text.some((w) => /^AssemblylineAnalysis\.VerifyTLS: is off: the MASS certificate is not checked/.test(w)), text.join('\n'));
  assert.ok(text.some((w) => /^GLOBAL\.ServerAliases: lists https:\/\/mass\.example\.org, the origin of ServerURL/.test(w)), text.join('\n'));
});

test('a MASS CAFile that does not exist is a problem before start', () => {
  const problems = problemsOf(() => loadConfig({ env: { ...env, MASSAL_ASSEMBLYLINEANALYSIS_CAFILE: 'no-such-dir/ca.pem' } }));
  assert.ok(problems.some((p) => /^AssemblylineAnalysis\.CAFile: 'no-such-dir\/ca\.pem' does not exist/.test(p)), problems.join('\n'));
});
