/**
 * A reverse proxy that rewrites the Host header, as a misconfigured nginx `proxy_set_header Host`
 * would: MASS then builds every URL it hands out from the rewritten host. Also a trap server that
 * records every request it gets, to prove that nothing (and no key) is sent to an origin.
 */
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorder {
  origin: string;
  requests: Array<{ method: string; url: string; headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closer(server: Server): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
}

/** Forwards every request to `target` (an http origin) with Host replaced by `host`; records what it forwarded. */
export async function startHostRewritingProxy(target: string, host: string): Promise<Recorder> {
  const upstream = new URL(target);
  const requests: Recorder['requests'] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const out = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  const origin = await listen(server);
  return { origin, requests, close: closer(server) };
}

/** Answers every request with 418 and records it. */
export async function startTrap(): Promise<Recorder> {
  const requests: Recorder['requests'] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    res.writeHead(418).end();
  });
  const origin = await listen(server);
  return { origin, requests, close: closer(server) };
}
