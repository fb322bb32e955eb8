import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { waitFor } from '../helpers/wait.js';

type After = { after: (fn: () => unknown) => void };

/** An upstream that echoes every byte back and counts what it received. */
async function echoUpstream(t: After): Promise<{ port: number; received: () => number; connections: () => number }> {
  let received = 0;
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      received += d.length;
      s.write(d);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  return { port: (server.address() as { port: number }).port, received: () => received, connections: () => connections };
}

async function proxyTo(t: After, port: number): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ host: '127.0.0.1', port });
  t.after(() => proxy.close());
  return proxy;
}

interface Exchange {
  got: Buffer;
  chunks: number;
  error: string | null;
}

/** Connects, writes `payload`, collects the answer until the connection closes or `idleMs` pass without data. */
function exchange(port: number, payload: Buffer, idleMs = 300): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let error: string | null = null;
    const s = connect(port, '127.0.0.1');
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(timer);
      s.destroy();
      resolve({ got: Buffer.concat(parts), chunks: parts.length, error });
    };
    const idle = () => {
      clearTimeout(timer);
      timer = setTimeout(finish, idleMs);
    };
    s.on('connect', () => {
      s.write(payload);
      idle();
    });
    s.on('data', (d: Buffer) => {
      parts.push(d);
      if (Buffer.concat(parts).length >= payload.length) finish();
      else idle();
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
      if (e.code === 'ECONNREFUSED') {
        clearTimeout(timer);
        resolve({ got: Buffer.alloc(0), chunks: 0, error });
      }
    });
    s.on('close', () => finish());
    s.setTimeout(5000, () => reject(new Error('exchange did not end')));
  });
}

const payload = (n: number) => Buffer.alloc(n, 'abcdefghij');

test('fault proxy forwards bytes both ways unchanged', async (t) => {
  const up = await echoUpstream(t);
  const proxy = await proxyTo(t, up.port);
  assert.match(proxy.origin, /^http:\/\/127\.0\.0\.1:\d+$/);
  const r = await exchange(proxy.port, payload(50_000));
  assert.equal(r.error, null);
  assert.ok(r.got.equals(payload(50_000)));
  assert.equal(proxy.stats().bytesUp, 50_000);
  assert.equal(proxy.stats().bytesDown, 50_000);
});

test('reset after N uploaded bytes: the upstream sees exactly N, the client gets a reset', async (t) => {
  const up = await echoUpstream(t);
  const proxy = await proxyTo(t, up.port);
  await proxy.set({ reset: { direction: 'up', bytes: 1000 } });
  const r = await exchange(proxy.port, payload(20_000));
  assert.equal(r.error, 'ECONNRESET');
  await waitFor(() => up.received() === 1000, { what: 'the upstream to receive 1000 bytes', timeoutMs: 2000 });
  assert.ok(r.got.length <= 1000);
  assert.equal(proxy.stats().resets, 1);
});

test('reset after N downloaded bytes: the client receives exactly N bytes, then a reset', async (t) => {
  const up = await echoUpstream(t);
  const proxy = await proxyTo(t, up.port);
  await proxy.set({ reset: { direction: 'down', bytes: 3000 } });
  const r = await exchange(proxy.port, payload(20_000));
  assert.equal(r.got.length, 3000);
  assert.equal(r.error, 'ECONNRESET');
});

test('reset armed by a marker and bounded by times: other requests and later connections pass', async (t) => {
  const up = await echoUpstream(t);
  const proxy = await proxyTo(t, up.port);
  await proxy.set({ reset: { direction: 'down', bytes: 10, after: 'POST /upload', times: 1 } });
  const plain = await exchange(proxy.port, Buffer.from('GET /status HTTP/1.1\r\n\r\n'));
  assert.equal(plain.error, null, 'no marker: forwarded');
  assert.equal(plain.got.toString(), 'GET /status HTTP/1.1\r\n\r\n');
  const hit = await exchange(proxy.port, Buffer.from(`POST /upload HTTP/1.1\r\n\r\n${'x'.repeat(500)}`));
  assert.equal(hit.got.length, 10);
  assert.equal(hit.error, 'ECONNRESET');
  const again = await exchange(proxy.port, Buffer.from(`POST /upload HTTP/1.1\r\n\r\n${'y'.repeat(500)}`));
  assert.equal(again.error, null, 'times: 1 → the second upload passes');
  assert.equal(again.got.length, 525);
  assert.equal(proxy.stats().resets, 1);
});

test('latency with chunkBytes delivers a slow body in small pieces, complete and in order', async (t) => {
  const up = await echoUpstream(t);
  const proxy = await proxyTo(t, up.port);
  await proxy.set({ latencyMs: 2, chunkBytes: 100 });
  const body = Buffer.from(Array.from({ length: 2000 }, (_, i) => String.fromCharCode(65 + (i % 26))).join(''));
  const r = await exchange(proxy.port, body, 1000);
  assert.ok(r.got.equals(body), 'every byte, in order');
  assert.ok(r.chunks >= 5, `arrived in ${r.chunks} pieces`);
});

test('black hole: the connection is accepted, nothing is forwarded or answered; switching back serves new connections', async (t) => {
  const up = await echoUpstream(t);
  const proxy = await proxyTo(t, up.port);
  await proxy.set({ blackHole: true });
  const r = await exchange(proxy.port, payload(100), 200);
  assert.equal(r.error, null, 'accepted, not refused');
  assert.equal(r.got.length, 0);
  assert.equal(up.connections(), 0, 'never reached the upstream');
  assert.equal(proxy.stats().swallowed, 1);
  await proxy.set({});
  const ok = await exchange(proxy.port, payload(100));
  assert.equal(ok.got.length, 100);
});

test('refuse closes the port (ECONNREFUSED) and switching back listens on the same port again', async (t) => {
  const up = await echoUpstream(t);
  const proxy = await proxyTo(t, up.port);
  await proxy.set({ refuse: true });
  const refused = await exchange(proxy.port, payload(10));
  assert.equal(refused.error, 'ECONNREFUSED');
  await proxy.set({});
  const ok = await exchange(proxy.port, payload(10));
  assert.equal(ok.got.length, 10);
});

test('close is safe twice and refuses further connections', async (t) => {
  const up = await echoUpstream(t);
  const proxy = await startFaultProxy(`http://127.0.0.1:${up.port}`);
  await proxy.close();
  await proxy.close();
  const r = await exchange(proxy.port, payload(10));
  assert.equal(r.error, 'ECONNREFUSED');
  await assert.rejects(proxy.set({}), /closed/);
});
