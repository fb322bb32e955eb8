/**
 * Each Assemblyline connection option of the client against the Assemblyline simulator over HTTPS:
 * trusted CA, default verification, verification off, password login, mTLS, session expiry.
 */
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { BridgeError } from '../../src/errors.js';
import { createAssemblylineClient } from '../../src/assemblyline/client.js';
import type { AssemblylineClient, AssemblylineClientOptions } from '../../src/assemblyline/types.js';
import { createAssemblylineSimulator, type AssemblylineSimulator } from '../../src/simulators/assemblyline/index.js';
import { silentLogger } from '../../src/log.js';
import { nextMessage } from '../helpers/al-queue.js';
import { makeTlsFixture, type TlsFixture } from '../helpers/tls.js';

let pki: TlsFixture;

before(async () => {
  pki = await makeTlsFixture();
});

after(async () => {
  await pki?.cleanup();
});

async function startSim(t: TestContext, requestCert = false): Promise<{ sim: AssemblylineSimulator; url: string }> {
  const sim = await createAssemblylineSimulator({
    analysisDelayMs: 20,
    logger: silentLogger(),
    https: { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert },
  });
  t.after(() => sim.close());
  const url = await sim.listen({ host: '127.0.0.1', port: 0 });
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
  return { sim, url };
}

function client(t: TestContext, opts: AssemblylineClientOptions): AssemblylineClient {
  const c = createAssemblylineClient({ timeoutMs: 5000, ...opts });
  t.after(() => c.close());
  return c;
}

/** Ingests a small file and reads its result: the round trip every auth mode must support. */
async function ingestAndRead(al: AssemblylineClient, queue: string, content: string): Promise<void> {
  const { ingestId } = await al.ingest({
    name: 'sample.txt',
    body: Buffer.from(content),
    metadata: { bridge_job: queue },
    params: { priority: 200, generate_alert: false, never_drop: true },
    notificationQueue: queue,
  });
  const message = await nextMessage(al, queue);
  assert.equal(message.ingest_id, ingestId);
  assert.equal(message.failure, '');
  const full = await al.getSubmissionFull(message.submission.sid);
  assert.ok(full, 'the submission exists');
  assert.equal(full.files[0].name, 'sample.txt');
  assert.deepEqual(await al.downloadFileBytes(full.files[0].sha256), Buffer.from(content));
}

test('apikey over TLS with the CA configured works end to end', async (t) => {
  const { sim, url } = await startSim(t);
  const al = client(t, { url, user: sim.user, auth: 'apikey', apiKey: sim.apiKey, ca: pki.ca });
  await ingestAndRead(al, 'tls-apikey', 'hello over TLS\n');
});

test('default verification without the CA fails with a clear, permanent TLS error', async (t) => {
  const { sim, url } = await startSim(t);
  const al = client(t, { url, user: sim.user, auth: 'apikey', apiKey: sim.apiKey });
  await assert.rejects(al.getMessages('tls-noca', 5), (err: unknown) => {
    assert.ok(err instanceof BridgeError);
    assert.equal(err.code, 'AUTH');
    assert.equal(err.transient, false);
    assert.match(err.message, /^TLS certificate verification failed: /);
    assert.ok(!err.message.includes(sim.apiKey.split(':')[1]));
    return true;
  });
});

test('verifyTls:false connects without the CA and reports the insecure setting once', async (t) => {
  const { sim, url } = await startSim(t);
  let warnings = 0;
  const al = client(t, { url, user: sim.user, auth: 'apikey', apiKey: sim.apiKey, verifyTls: false, onInsecure: () => warnings++ });
  assert.deepEqual(await al.getMessages('tls-insecure', 5), []);
  assert.deepEqual(await al.getMessages('tls-insecure', 5), []);
  assert.equal(warnings, 1);
});

test('password login over TLS works end to end', async (t) => {
  const { sim, url } = await startSim(t);
  const al = client(t, { url, user: sim.user, auth: 'password', password: sim.password, ca: pki.ca });
  await ingestAndRead(al, 'tls-password', 'hello with a session\n');
});

test('behind mTLS the client certificate goes with API-key or password auth; without a certificate the handshake fails', async (t) => {
  const { sim, url } = await startSim(t, true);
  const withKey = client(t, { url, user: sim.user, auth: 'apikey', apiKey: sim.apiKey, clientCert: pki.clientCert, clientKey: pki.clientKey, ca: pki.ca });
  await ingestAndRead(withKey, 'tls-mtls', 'hello with a client certificate\n');
  const withPassword = client(t, { url, user: sim.user, auth: 'password', password: sim.password, clientCert: pki.clientCert, clientKey: pki.clientKey, ca: pki.ca });
  await ingestAndRead(withPassword, 'tls-mtls-pw', 'hello with a certificate and a session\n');

  const noCert = client(t, { url, user: sim.user, auth: 'apikey', apiKey: sim.apiKey, ca: pki.ca });
  await assert.rejects(noCert.getMessages('tls-mtls', 5), (err: unknown) => err instanceof BridgeError && (err.code === 'NETWORK' || err.code === 'AUTH'));
});

test('an expired or purged session is renewed by logging in again, transparently for the caller', async (t) => {
  const { sim, url } = await startSim(t);
  const al = client(t, { url, user: sim.user, auth: 'password', password: sim.password, ca: pki.ca });
  assert.deepEqual(await al.getMessages('tls-expiry', 5), []);

  // A witness session made beside the client shows that the server really refuses old sessions.
  const login = await sim.app.inject({ method: 'POST', url: '/api/v4/auth/login/', payload: { user: sim.user, password: sim.password } });
  assert.equal(login.statusCode, 200);
  const cookies = login.cookies.map((c) => `${c.name}=${c.value}`).join('; ');
  const xsrf = login.cookies.find((c) => c.name === 'XSRF-TOKEN')?.value ?? '';
  const witness = async (): Promise<number> =>
    (await sim.app.inject({ method: 'GET', url: '/api/v4/ingest/get_message_list/witness/?page_size=1', headers: { cookie: cookies, 'x-xsrf-token': xsrf } })).statusCode;
  assert.equal(await witness(), 200);

  // Past AL's session_duration (3600 s) the session cookie is no longer accepted.
  const clock = await sim.app.inject({ method: 'POST', url: '/_sim/clock', payload: { advance_ms: 2 * 3600 * 1000 } });
  assert.ok(clock.statusCode < 300, `clock control answered ${clock.statusCode}`);
  assert.equal(await witness(), 401);
  assert.deepEqual(await al.getMessages('tls-expiry', 5), []);

  // The server forgets every session ('Session expired').
  const purge = await sim.app.inject({ method: 'POST', url: '/_sim/sessions/purge' });
  assert.ok(purge.statusCode < 300, `purge answered ${purge.statusCode}`);
  await ingestAndRead(al, 'tls-expiry', 'after re-login\n');
});
