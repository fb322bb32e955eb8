/**
 * The plain loopback copy's two ends, each in its own process (as the two simulators are): node:http servers on
 * 127.0.0.1:0 that do nothing but send or receive bytes. Prints one JSON line `{ "url": … }` on stdout, then runs
 * until its stdin closes, SIGTERM/SIGINT, or BENCH_SIM_MAX_MS (default 10 min) passes.
 *
 *   node --import tsx bench/plain-server.ts --role=source --mb=1024 --seed=<64 hex digits>   # GET /: the bytes
 *   node --import tsx bench/plain-server.ts --role=sink                                      # POST /: {"bytes": n}
 */
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { generated } from './lib.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { role: { type: 'string' }, mb: { type: 'string', default: '0' }, seed: { type: 'string', default: '' } }, strict: true });
  const mb = Number(values.mb);
  if (values.role !== 'source' && values.role !== 'sink') throw new Error('--role=source|sink required');
  if (values.role === 'source' && (!Number.isInteger(mb) || mb < 1 || !/^[0-9a-f]{64}$/.test(values.seed))) throw new Error('--mb (≥ 1) and --seed (64 hex digits) required');
  const server = createServer((req, res) => {
    if (values.role === 'source') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(mb * 1048576) });
      generated(mb, values.seed).pipe(res);
      return;
    }
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ bytes }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const shutdown = (): void => {
    server.close();
    server.closeAllConnections();
  };
  process.stdin.on('end', shutdown);
  process.stdin.on('close', shutdown);
  process.stdin.resume();
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  setTimeout(() => process.exit(3), Number(process.env.BENCH_SIM_MAX_MS ?? 600_000)).unref();
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`plain-server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
