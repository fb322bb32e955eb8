/**
 * listenError: why a server of the bridge or of a simulator cannot listen, in words for the person who started it,
 * with the option that chooses another address; errors it does not know pass unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BridgeError, listenError } from '../../src/errors.js';

/** An error shaped like the one net.Server#listen emits. */
const listenFailure = (code: string, address: string) => Object.assign(new Error(`listen ${code}: ${address}`), { code, errno: -1, syscall: 'listen' });

const CHOOSE = 'choose another port with --mass-port N (0: any free port)';

test('a port in use names the address and the option', () => {
  const err = listenError(listenFailure('EADDRINUSE', '127.0.0.1:5000'), 'the MASS simulator', '127.0.0.1', 5000, CHOOSE);
  assert.ok(err instanceof BridgeError && err.code === 'CONFIG_INVALID');
  assert.equal(err.message, `the MASS simulator cannot listen on 127.0.0.1:5000: another program uses that address; ${CHOOSE}`);
});

test('an address that is not one of this machine says so and points at the host option when there is one', () => {
  const failure = listenFailure('EADDRNOTAVAIL', '192.0.2.1:5000');
  const withHost = listenError(failure, 'the MASS simulator', '192.0.2.1', 5000, CHOOSE, 'choose another address with --host ADDRESS');
  assert.ok(withHost instanceof BridgeError);
  assert.equal(withHost.message, 'the MASS simulator cannot listen on 192.0.2.1:5000: 192.0.2.1 is not an address of this machine; choose another address with --host ADDRESS');
  assert.equal(withHost.cause, failure);
  const api = listenError(listenFailure('EADDRNOTAVAIL', '[2001:db8::1]:8080'), 'the status API', '2001:db8::1', 8080, 'choose another address with [API] Listen');
  assert.ok(api instanceof BridgeError);
  assert.equal(api.message, 'the status API cannot listen on [2001:db8::1]:8080: 2001:db8::1 is not an address of this machine; choose another address with [API] Listen');
});

test('a port that needs privileges says so and names the option', () => {
  const err = listenError(listenFailure('EACCES', '0.0.0.0:80'), 'the status API', '0.0.0.0', 80, 'choose another address with [API] Listen');
  assert.ok(err instanceof BridgeError && err.code === 'CONFIG_INVALID');
  assert.equal(err.message, 'the status API cannot listen on 0.0.0.0:80: not allowed to listen on that port: ports below 1024 need privileges; choose another address with [API] Listen');
});

test('any other error passes unchanged', () => {
  const other = listenFailure('EMFILE', '127.0.0.1:5000');
  assert.equal(listenError(other, 'the MASS simulator', '127.0.0.1', 5000, CHOOSE), other);
  assert.equal(listenError(null, 'the MASS simulator', '127.0.0.1', 5000, CHOOSE), null);
});
