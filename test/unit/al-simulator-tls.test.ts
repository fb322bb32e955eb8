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

test('HTTPS with mTLS: a verified client certificate whose CN is the X-USER authenticates without a key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'al-sim-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pki = makePki(dir);
  const sim = await createAssemblylineSimulator({ https: { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true } });
  t.after(() => sim.close());
  const origin = await sim.listen();
  assert.match(origin, /^https:\/\/127\.0\.0\.1:\d+$/);
  const agent = new Agent({ connect: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } });
  t.after(() => agent.close());

  const asUser = await request(`${origin}/api/`, { dispatcher: agent, headers: { 'X-USER': 'mass-bridge' } });
  assert.equal(asUser.statusCode, 200);
  assert.deepEqual((await asUser.body.json() as Record<string, unknown>).api_response, ['v4']);

  const otherUser = await request(`${origin}/api/`, { dispatcher: agent, headers: { 'X-USER': 'someone-else' } });
  assert.equal(otherUser.statusCode, 401);
  await otherUser.body.dump();

  const login = await request(`${origin}/api/v4/auth/login/`, {
    dispatcher: agent, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: sim.user, apikey: sim.apiKey }),
  });
  assert.equal(login.statusCode, 200);
  await login.body.dump();
  const cookies = login.headers['set-cookie'] as string[];
  assert.ok(cookies.some((c) => c.startsWith('session=') && c.includes('; Secure;')), 'the session cookie is Secure over HTTPS');
});
