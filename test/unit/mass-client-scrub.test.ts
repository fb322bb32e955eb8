/** MASS error answers reach logs and the status API: the API key is scrubbed from them, as for Assemblyline. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BridgeError } from '../../src/errors.js';
import { createMassClient } from '../../src/mass/client.js';

const KEY = 'mass-instance-key-0123456789abcdef';

test('a MASS error page that echoes the request headers does not carry the API key into the error', async (t) => {
  const server = createServer((req, res) => {
    res.writeHead(500, { 'content-type': 'text/html' });
    res.end(`<html><pre>HTTP_AUTHORIZATION = ${String(req.headers.authorization)}</pre></html>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const apiRoot = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`;
  const client = createMassClient({ apiRoot, apiKey: KEY });
  t.after(() => client.close());
  const err = await client.getSample(`${apiRoot}sample/abc/`).catch((e: unknown) => e);
  assert.ok(err instanceof BridgeError);
  assert.equal(err.status, 500);
  assert.match(err.body ?? '', /HTTP_AUTHORIZATION = APIKEY \[redacted\]/, 'the body excerpt is kept, scrubbed');
  assert.ok(!JSON.stringify({ ...err.toJSON(), body: err.body, message: err.message }).includes(KEY), 'no key anywhere in the error');
});
