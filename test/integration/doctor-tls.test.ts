/** `doctor` names an untrusted Assemblyline certificate and the CAFile fix, not a role or credential problem. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { doctorCommand } from '../../src/commands/doctor.js';
import { silentLogger } from '../../src/log.js';
import { createAssemblylineSimulator } from '../../src/simulators/assemblyline/index.js';
import { makeConfig, startSimulators } from '../helpers/bridge-harness.js';
import { makeTlsFixture } from '../helpers/tls.js';

test('doctor: Assemblyline over TLS without its CA → the CAFile fix; with it → ok', { timeout: 60_000 }, async (t) => {
  const pki = await makeTlsFixture();
  t.after(() => pki.cleanup());
  const sims = await startSimulators(t);
  const al = await createAssemblylineSimulator({ analysisDelayMs: 10, logger: silentLogger(), https: { key: pki.serverKey, cert: pki.serverCert } });
  sims.defer(() => al.close());
  const alUrl = await al.listen({ host: '127.0.0.1', port: 0 });
  const endpoints = { ...sims.endpoints, alUrl, alUser: al.user, alApiKey: al.apiKey };

  let out = '';
  const write = (s: string) => (out += s);
  assert.equal(await doctorCommand({ config: makeConfig(endpoints), out: { write } }), 1);
  assert.match(out, /FAIL\] Assemblyline at https:\/\/127\.0\.0\.1:\d+ cannot be used: the TLS certificate of Assemblyline is issued by a certificate authority this machine does not trust/);
  assert.match(out, /fix: put the PEM certificate of that CA in a file and name it in \[Assemblyline\] CAFile/);
  assert.doesNotMatch(out, /role|credentials/);

  out = '';
  const trusting = makeConfig(endpoints, { assemblyline: { caFile: join(pki.dir, 'ca.crt') } });
  assert.equal(await doctorCommand({ config: trusting, out: { write } }), 0, out);
  assert.match(out, /\[ ok \] Assemblyline at https:\/\/127\.0\.0\.1:\d+ accepts user/);
});
