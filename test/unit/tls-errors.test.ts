/** TLS failures are configuration errors with a fix, for both upstreams; connection failures stay transient. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BridgeError, isTransient, tlsFailure, toBridgeError } from '../../src/errors.js';

function tlsError(code: string, message = 'tls says no'): Error {
  return Object.assign(new Error(message), { code });
}

const CASES: Array<{ code: string; what: RegExp; mass: RegExp; assemblyline: RegExp }> = [
  { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', what: /does not trust/, mass: /\[AssemblylineAnalysis\] CAFile/, assemblyline: /\[Assemblyline\] CAFile/ },
  { code: 'SELF_SIGNED_CERT_IN_CHAIN', what: /does not trust/, mass: /\[AssemblylineAnalysis\] CAFile/, assemblyline: /\[Assemblyline\] CAFile/ },
  { code: 'DEPTH_ZERO_SELF_SIGNED_CERT', what: /does not trust/, mass: /\[AssemblylineAnalysis\] CAFile/, assemblyline: /\[Assemblyline\] CAFile/ },
  { code: 'ERR_TLS_CERT_ALTNAME_INVALID', what: /not valid for the host name/, mass: /\[GLOBAL\] ServerURL/, assemblyline: /\[Assemblyline\] URL/ },
  { code: 'CERT_HAS_EXPIRED', what: /has expired/, mass: /renew the certificate on the MASS server/, assemblyline: /renew the certificate on the Assemblyline server/ },
  { code: 'CERT_NOT_YET_VALID', what: /not valid yet/, mass: /clock/, assemblyline: /clock/ },
  { code: 'ERR_SSL_WRONG_VERSION_NUMBER', what: /does not speak TLS/, mass: /http:\/\/ in \[GLOBAL\] ServerURL/, assemblyline: /http:\/\/ in \[Assemblyline\] URL/ },
];

for (const c of CASES) {
  test(`${c.code} is a permanent configuration error naming the setting to change`, () => {
    const raw = tlsError(c.code);
    assert.equal(isTransient(raw), false);
    // undici may wrap the socket error; the cause decides.
    assert.equal(isTransient(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET', cause: raw })), false);
    for (const upstream of ['mass', 'assemblyline'] as const) {
      const err = tlsFailure(raw, upstream, { method: 'GET', path: '/api/x/' });
      assert.ok(err instanceof BridgeError);
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.equal(err.upstream, upstream);
      assert.equal(err.transient, false);
      assert.match(err.message, c.what);
      assert.match(err.message, /; fix: /);
      assert.match(err.message, c[upstream]);
      assert.match(err.message, new RegExp(c.code));
    }
  });
}

test('connection failures that are not about certificates stay transient and are not TLS failures', () => {
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN']) {
    const raw = tlsError(code, 'connect failed');
    assert.equal(isTransient(raw), true, code);
    assert.equal(tlsFailure(raw, 'mass'), undefined, code);
    assert.equal(toBridgeError(raw).code, 'NETWORK');
  }
});
