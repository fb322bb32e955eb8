/**
 * A TCP fault proxy (node:net) between a client and one upstream on loopback, for reliability tests.
 * It forwards bytes both ways and, switchable at run time with set(), injects:
 *   - latency: every forwarded chunk waits `latencyMs` (order kept); with `chunkBytes` the data is cut
 *     into pieces of that size first, each delayed, so a body arrives slowly;
 *   - reset: after `bytes` bytes in one direction ('up' = client → upstream, 'down' = upstream → client)
 *     the connection is destroyed on both sides (RST to the client). Counting starts on a connection
 *     with the upload chunk that contains `after` (e.g. 'POST /api/v4/ingest/'), or at once without it;
 *     `times` bounds how many connections are reset (then bytes pass again);
 *   - blackHole: connections are accepted and bytes read, but nothing is forwarded or answered
 *     (applies to open connections too);
 *   - refuse: the port is closed (connection refused); open connections are destroyed. Switching
 *     refuse off listens on the same port again.
 * It also watches requests without changing them: an upload chunk containing one of `watch`'s texts starts a
 * watched request on its connection, whose bytes received from the client (from that chunk) and from the
 * upstream are counted in stats().watched until the next watched request on that connection.
 * Listens on 127.0.0.1 port 0. close() is safe to call twice.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface ResetRule {
  direction: 'up' | 'down';
  /** Bytes forwarded in `direction` (after the `after` marker, if set) before the reset. */
  bytes: number;
  /** Start counting on a connection only once its upload contains this text (from the chunk holding it). */
  after?: string;
  /** Reset at most this many connections (default: every matching one). */
  times?: number;
}

export interface FaultMode {
  latencyMs?: number;
  /** With latencyMs: cut data into pieces of this many bytes, each delayed (a slow body). */
  chunkBytes?: number;
  reset?: ResetRule;
  blackHole?: boolean;
  refuse?: boolean;
  /** Texts that mark a request to watch (e.g. 'GET /api/sample/'); see stats().watched. */
  watch?: string[];
}

/** One watched request: the text that marked it, bytes from the client (from the marked chunk on) and from the upstream. */
export interface WatchedRequest {
  marker: string;
  up: number;
  down: number;
}

export interface FaultProxyStats {
  connections: number;
  open: number;
  bytesUp: number;
  bytesDown: number;
  resets: number;
  /** Connections accepted while the black hole was on. */
  swallowed: number;
  /** Watched requests in the order they started. */
  watched: WatchedRequest[];
}

export interface FaultProxy {
  /** http://127.0.0.1:<port> */
  readonly origin: string;
  readonly port: number;
  /** Replaces the whole fault mode ({} = plain forwarding). Resolves once the listener state matches. */
  set(mode: FaultMode): Promise<void>;
  mode(): FaultMode;
  stats(): FaultProxyStats;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket | null;
  armed: { up: boolean; down: boolean };
  counted: { up: number; down: number };
  seen: string;
  /** The watched request in progress on this connection. */
  watching: WatchedRequest | null;
  chain: { up: Promise<void>; down: Promise<void> };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Starts a proxy to `target` ('http://host:port' or {host, port}). */
export async function startFaultProxy(target: string | { host: string; port: number }, initial: FaultMode = {}): Promise<FaultProxy> {
  const to = typeof target === 'string' ? { host: new URL(target).hostname, port: Number(new URL(target).port) } : target;
  let mode: FaultMode = { ...initial };
  let resetsLeft = initial.reset?.times ?? Infinity;
  const pairs = new Set<Pair>();
  const stats: FaultProxyStats = { connections: 0, open: 0, bytesUp: 0, bytesDown: 0, resets: 0, swallowed: 0, watched: [] };
  let closed = false;

  const destroy = (p: Pair, reset: boolean) => {
    if (reset) p.client.resetAndDestroy();
    else p.client.destroy();
    p.upstream?.destroy();
  };

  /** Forwards `data` in one direction, applying the current mode; resolves when written (or dropped). */
  const forward = async (p: Pair, dir: 'up' | 'down', data: Buffer): Promise<void> => {
    const out = dir === 'up' ? p.upstream : p.client;
    const rule = mode.reset;
    let pieces: Buffer[] = [data];
    if (mode.chunkBytes && mode.chunkBytes > 0) {
      pieces = [];
      for (let i = 0; i < data.length; i += mode.chunkBytes) pieces.push(data.subarray(i, i + mode.chunkBytes));
    }
    for (let piece of pieces) {
      if (mode.blackHole || !out || out.destroyed) return;
      if (mode.latencyMs) await sleep(mode.latencyMs);
      if (mode.blackHole || out.destroyed) return;
      if (rule && rule.direction === dir && p.armed[dir] && resetsLeft > 0) {
        const room = rule.bytes - p.counted[dir];
        if (piece.length >= room) {
          if (room > 0) out.write(piece.subarray(0, room));
          resetsLeft--;
          stats.resets++;
          // Let the partial bytes leave before the reset.
          await sleep(5);
          destroy(p, true);
          return;
        }
        p.counted[dir] += piece.length;
      }
      if (dir === 'up') stats.bytesUp += piece.length;
      else stats.bytesDown += piece.length;
      piece = Buffer.from(piece);
      out.write(piece);
    }
  };

  const arm = (p: Pair, chunk: Buffer) => {
    const rule = mode.reset;
    if (!rule) return;
    if (!rule.after) {
      p.armed.up = p.armed.down = true;
      return;
    }
    if (p.armed[rule.direction]) return;
    // Keep a short tail so a marker split over two chunks is still found.
    const text = p.seen + chunk.toString('latin1');
    const at = text.indexOf(rule.after);
    if (at >= 0) {
      p.armed[rule.direction] = true;
      p.seen = '';
    } else p.seen = text.slice(-rule.after.length);
  };

  const watch = (p: Pair, chunk: Buffer) => {
    const text = chunk.toString('latin1');
    const marker = mode.watch?.find((m) => text.includes(m));
    if (marker !== undefined) {
      p.watching = { marker, up: 0, down: 0 };
      stats.watched.push(p.watching);
    }
    if (p.watching) p.watching.up += chunk.length;
  };

  const onConnection = (client: Socket) => {
    stats.connections++;
    stats.open++;
    const p: Pair = { client, upstream: null, armed: { up: false, down: false }, counted: { up: 0, down: 0 }, seen: '', watching: null, chain: { up: Promise.resolve(), down: Promise.resolve() } };
    pairs.add(p);
    client.on('error', () => destroy(p, false));
    client.on('close', () => {
      stats.open--;
      pairs.delete(p);
      p.upstream?.destroy();
    });
    if (mode.blackHole) {
      stats.swallowed++;
      client.resume();
      return;
    }
    const upstream = connect(to.port, to.host);
    p.upstream = upstream;
    upstream.on('error', () => destroy(p, false));
    upstream.on('close', () => {
      // Let queued bytes reach the client before ending it.
      void p.chain.down.then(() => client.end());
    });
    client.on('data', (chunk: Buffer) => {
      arm(p, chunk);
      watch(p, chunk);
      // With the marker in this chunk, count from here (the marker bytes themselves are part of the request).
      p.chain.up = p.chain.up.then(() => forward(p, 'up', chunk));
    });
    client.on('end', () => void p.chain.up.then(() => upstream.end()));
    upstream.on('data', (chunk: Buffer) => {
      if (p.watching) p.watching.down += chunk.length;
      p.chain.down = p.chain.down.then(() => forward(p, 'down', chunk));
    });
  };

  let server: Server = createServer(onConnection);
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as { port: number }).port);
      });
    });
  const stopListening = () => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  const port = await listen(0);
  if (mode.refuse) await stopListening();

  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    async set(next: FaultMode) {
      if (closed) throw new Error('fault proxy is closed');
      mode = { ...next };
      resetsLeft = next.reset?.times ?? Infinity;
      for (const p of pairs) {
        p.armed = { up: false, down: false };
        p.counted = { up: 0, down: 0 };
        p.seen = '';
        if (next.reset && !next.reset.after) p.armed = { up: true, down: true };
      }
      if (next.refuse) {
        const closing = stopListening();
        for (const p of pairs) destroy(p, true);
        await closing;
      } else if (!server.listening) {
        server = createServer(onConnection);
        await listen(port);
      }
    },
    mode: () => ({ ...mode }),
    stats: () => ({ ...stats, watched: stats.watched.map((w) => ({ ...w })) }),
    async close() {
      if (closed) return;
      closed = true;
      const closing = stopListening();
      for (const p of pairs) destroy(p, false);
      await closing;
    },
  };
}
