/**
 * MASS behind HTTPS with a certificate from a private CA (generated here): the configured CAFile is
 * trusted, a missing CA is a configuration error that names the fix (not a network error retried for
 * ever), VerifyTLS = false connects with a warning, and `doctor` says what to change.
 */
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBridgeRuntime } from '../../src/bridge/commands.js';
import { doctorCommand } from '../../src/commands/doctor.js';
import { BridgeError, isTransient } from '../../src/errors.js';
import { createMassClient } from '../../src/mass/client.js';
import { massClientOptionsFromConfig } from '../../src/mass/options.js';
import type { MassClient } from '../../src/mass/types.js';
import { createMassSimulator, type MassSimulator } from '../../src/simulators/mass/index.js';
import { silentLogger } from '../../src/log.js';
import { makeConfig, startSimulators } from '../helpers/bridge-harness.js';
import { waitFor } from '../helpers/wait.js';
import { makeTlsFixture, type TlsFixture } from '../helpers/tls.js';

let pki: TlsFixture;
let stateDir: string;

before(async () => {
  pki = await makeTlsFixture();
  stateDir = await mkdtemp(join(tmpdir(), 'mass-tls-state-'));
});

after(async () => {
  await pki?.cleanup();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

async function startSim(t: TestContext): Promise<{ sim: MassSimulator; origin: string }> {
  const sim = await createMassSimulator({ schedulerIntervalMs: 0, logger: silentLogger(), https: { key: pki.serverKey, cert: pki.serverCert } });
  t.after(() => sim.close());
  const origin = await sim.listen({ host: '127.0.0.1', port: 0 });
  assert.match(origin, /^https:\/\/127\.0\.0\.1:\d+$/);
  return { sim, origin };
}

function configFor(sim: MassSimulator, origin: string, mass: { caFile?: string; verifyTls?: boolean } = {}) {
  return makeConfig(
    { massApiRoot: `${origin}/api/`, uuid: sim.instance.uuid, massKey: sim.instance.key, alUrl: 'http://127.0.0.1:9', alUser: 'u', alApiKey: 'k:s', stateDir },
    { mass: { timeout: 5, ...mass } },
  );
}

function track(t: TestContext, c: MassClient): MassClient {
  t.after(() => c.close());
  return c;
}

test('with [AssemblylineAnalysis] CAFile naming the private CA, the instance polls and reads over HTTPS', async (t) => {
  const { sim, origin } = await startSim(t);
  const options = await massClientOptionsFromConfig(configFor(sim, origin, { caFile: join(pki.dir, 'ca.crt') }));
  const mass = track(t, createMassClient(options));
  assert.deepEqual(await mass.poll(sim.instance.uuid), []);
  const instance = await mass.getInstance(sim.instance.uuid);
  // MASS served over TLS names its objects with https:// URLs, and the client follows them.
  assert.match(instance.url, /^https:\/\/127\.0\.0\.1:\d+\/api\/analysis_system_instance\//);
  assert.equal((await mass.getAnalysisSystem('assemblyline')).identifier_name, 'assemblyline');
});

test('without the CA, the first request fails once with a permanent configuration error that names the fix', async (t) => {
  const { sim, origin } = await startSim(t);
  const mass = track(t, createMassClient(await massClientOptionsFromConfig(configFor(sim, origin))));
  await assert.rejects(mass.poll(sim.instance.uuid), (err: unknown) => {
    assert.ok(err instanceof BridgeError);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.equal(err.upstream, 'mass');
    assert.equal(isTransient(err), false, 'a certificate that is not trusted is not retried');
    assert.match(err.message, /certificate authority this machine does not trust/);
    assert.match(err.message, /fix: .*\[AssemblylineAnalysis\] CAFile/);
    assert.ok(!err.message.includes(sim.instance.key), 'the key is not in the message');
    return true;
  });
});

test('a CAFile that is not a certificate is a configuration error before any connection', async (t) => {
  const { sim, origin } = await startSim(t);
  await assert.rejects(massClientOptionsFromConfig(configFor(sim, origin, { caFile: join(pki.dir, 'server.key') })), (err: unknown) => {
    assert.ok(err instanceof BridgeError);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, /\[AssemblylineAnalysis\] CAFile: .*server\.key is not a PEM file/);
    assert.ok(!err.message.includes('PRIVATE KEY'), 'the key file is not echoed');
    return true;
  });
});

test('VerifyTLS = false connects without the CA and warns once', async (t) => {
  const { sim, origin } = await startSim(t);
  let warnings = 0;
  const options = await massClientOptionsFromConfig(configFor(sim, origin, { verifyTls: false }), { onInsecure: () => warnings++ });
  const mass = track(t, createMassClient(options));
  assert.deepEqual(await mass.poll(sim.instance.uuid), []);
  assert.deepEqual(await mass.poll(sim.instance.uuid), []);
  assert.equal(warnings, 1);
});

test('doctor names the untrusted certificate and the CAFile fix instead of asking whether MASS is up', async (t) => {
  const { sim, origin } = await startSim(t);
  let out = '';
  const code = await doctorCommand({ config: configFor(sim, origin), out: { write: (s: string) => (out += s) } });
  assert.equal(code, 1);
  assert.match(out, /FAIL\] MASS at https:\/\/127\.0\.0\.1:\d+\/api\/ cannot be used: the TLS certificate of MASS is issued by a certificate authority this machine does not trust/);
  assert.match(out, /fix: put the PEM certificate of that CA in a file and name it in \[AssemblylineAnalysis\] CAFile/);
  assert.doesNotMatch(out, /MASS is up/);

  out = '';
  await doctorCommand({ config: configFor(sim, origin, { caFile: join(pki.dir, 'ca.crt') }), out: { write: (s: string) => (out += s) } });
  assert.match(out, /\[ ok \] MASS at https:\/\/127\.0\.0\.1:\d+\/api\/ accepts the instance key/);
  assert.match(out, /\[ ok \] MASS names its objects under https:\/\/127\.0\.0\.1:\d+, the origin of ServerURL/);
});

test('a running bridge shows the untrusted MASS certificate and its fix in its status until CAFile is set', { timeout: 60_000 }, async (t) => {
  const sims = await startSimulators(t, { mass: { https: { key: pki.serverKey, cert: pki.serverCert } } });
  assert.match(sims.massOrigin, /^https:/);
  const open = async (mass: { caFile?: string }) => {
    const config = makeConfig(sims.endpoints, { mass, bridge: { stateDir: join(sims.endpoints.stateDir, mass.caFile ? 'trusting' : 'blind') } });
    const runtime = await openBridgeRuntime(config, silentLogger());
    sims.defer(async () => {
      await runtime.bridge.stop({ graceMs: 500 });
      await runtime.close();
    });
    runtime.bridge.start();
    return runtime;
  };

  const blind = await open({});
  const health = await waitFor(() => {
    const h = blind.bridge.control.status().upstreams.mass;
    return h.lastErrorCode ? h : undefined;
  }, { what: 'a recorded MASS failure' });
  assert.equal(health.lastErrorCode, 'CONFIG_INVALID');
  assert.match(health.lastError ?? '', /fix: .*\[AssemblylineAnalysis\] CAFile/);
  assert.equal(blind.bridge.control.status().lastPollAt, null);
  await blind.bridge.stop({ graceMs: 500 });

  const trusting = await open({ caFile: join(pki.dir, 'ca.crt') });
  await waitFor(() => trusting.bridge.control.status().lastPollAt !== null, { what: 'a successful poll over TLS' });
});
