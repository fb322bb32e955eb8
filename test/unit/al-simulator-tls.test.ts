import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { createAssemblylineSimulator } from '../../src/simulators/assemblyline/index.js';

/** A throw-away CA, a server cert for 127.0.0.1 and a client cert whose CN is the AL user. */
function makePki(dir: string): Record<string, string> {
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  };
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=al-sim-test-ca', '-days', '1');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  for (const [name, cn] of [['server', '127.0.0.1'], ['client', 'mass-bridge']]) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1',
      ...(name === 'server' ? ['-extfile', 'san.ext'] : []));
  }
  const read = (f: string): string => readFileSync(join(dir, f), 'utf8');
  return { ca: read('ca.crt'), serverKey: read('server.key'), serverCert: read('server.crt'), clientKey: read('client.key'), clientCert: read('client.crt') };
}

test('HTTPS with mTLS: the certificate is a TLS-layer requirement; AL itself still needs an API key or a session (assemblyline-ui v4.7.4.stable6 api/base.py reads no certificate)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'al-sim-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pki = makePki(dir);
  const sim = await createAssemblylineSimulator({ https: { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true } });
  t.after(() => sim.close());
  const origin = await sim.listen();
  assert.match(origin, /^https:\/\/127\.0\.0\.1:\d+$/);
  const agent = new Agent({ connect: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } });
  t.after(() => agent.close());

  // X-USER alone, even with a verified certificate whose CN is the user, is not authentication for AL.
  const certOnly = await request(`${origin}/api/v4/ingest/get_message_list/q/?page_size=0`, { dispatcher: agent, headers: { 'X-USER': 'mass-bridge' } });
  assert.equal(certOnly.statusCode, 401);
  assert.equal((await certOnly.body.json() as Record<string, unknown>).api_error_message, 'Session not found');

  const withKey = await request(`${origin}/api/v4/ingest/get_message_list/q/?page_size=0`, { dispatcher: agent, headers: { 'X-USER': sim.user, 'X-APIKEY': sim.apiKey } });
  assert.equal(withKey.statusCode, 200);
  await withKey.body.dump();

  // Without a client certificate the TLS handshake itself fails.
  const noCert = new Agent({ connect: { ca: pki.ca } });
  t.after(() => noCert.close());
  await assert.rejects(request(`${origin}/api/`, { dispatcher: noCert, headers: { 'X-USER': sim.user, 'X-APIKEY': sim.apiKey } }));

  const login = await request(`${origin}/api/v4/auth/login/`, {
    dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: sim.user, apikey: sim.apiKey }),
  });
  assert.equal(login.statusCode, 200);
  await login.body.dump();
  const cookies = login.headers['set-cookie'] as string[];
  assert.ok(cookies.some((c) => c.startsWith('session=') && c.includes('; Secure;')), 'the session cookie is Secure over HTTPS');
});
