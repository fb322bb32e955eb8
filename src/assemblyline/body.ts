/**
 * Bounded reading of Assemblyline JSON answers. A `submission/full` of a huge submission can be
 * hundreds of MB; it is read chunk by chunk and given up (connection destroyed, nothing more read)
 * as soon as it passes the cap, so one answer cannot take the bridge's memory.
 */
import type { Readable } from 'node:stream';
import { BridgeError } from '../errors.js';

/** Default cap of one JSON answer from Assemblyline (bytes): 64 MiB. */
export const DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024;

/**
 * Reads `body` as UTF-8 text of at most `maxBytes` bytes. A Content-Length above the cap is refused
 * before any byte is read. Throws BridgeError UPSTREAM_PROTOCOL (not transient: the same answer would
 * come again) naming the call and the cap; other stream errors are passed on unchanged.
 */
export async function readAnswerText(
  body: Readable,
  contentLength: string | string[] | undefined,
  maxBytes: number,
  ctx: { method: string; path: string },
): Promise<string> {
  const tooLarge = (seen: string) =>
    new BridgeError('UPSTREAM_PROTOCOL', `Assemblyline ${ctx.method} ${ctx.path}: answer of ${seen} is larger than the ${maxBytes}-byte cap; not read`, {
      upstream: 'assemblyline',
      ...ctx,
      transient: false,
    });
  const declared = Number(Array.isArray(contentLength) ? contentLength[0] : contentLength);
  if (contentLength !== undefined && Number.isFinite(declared) && declared > maxBytes) {
    body.on('error', () => {});
    body.destroy();
    throw tooLarge(`${declared} bytes (Content-Length)`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      body.on('error', () => {});
      body.destroy();
      throw tooLarge(`more than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}
