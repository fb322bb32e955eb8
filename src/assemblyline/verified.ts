/**
 * The content of a file downloaded from Assemblyline, checked as it streams: at most `maxBytes`, exactly
 * `size` bytes when a size is expected, and the sha256 Assemblyline names it by. The last chunk is held
 * back until the whole content has been hashed, so whoever the stream feeds (an upload to MASS) never
 * receives the complete content of a file that fails a check: the error comes instead of the last chunk.
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { BridgeError } from '../errors.js';

export interface VerifyOptions {
  /** Lower-case hex sha256 the content must have. */
  sha256: string;
  /** Cap in bytes; more is SAMPLE_TOO_LARGE. */
  maxBytes?: number;
  /** Exact byte length expected (e.g. the Content-Length of the upload being fed); another length is UPSTREAM_PROTOCOL. */
  size?: number;
}

/**
 * A Transform passing the content through unchanged, one chunk behind. Errors (BridgeError, upstream
 * 'assemblyline', never transient: the same file would come again): SAMPLE_TOO_LARGE as soon as
 * the content passes `maxBytes`; UPSTREAM_PROTOCOL as soon as it passes `size`, or at its end when it
 * is shorter than `size` or its sha256 differs from `sha256`.
 */
export function verifiedContent(opts: VerifyOptions): Transform {
  const expected = opts.sha256.toLowerCase();
  const hash = createHash('sha256');
  let length = 0;
  let last: Buffer | undefined;
  const fail = (code: 'SAMPLE_TOO_LARGE' | 'UPSTREAM_PROTOCOL', message: string) =>
    new BridgeError(code, `file ${expected} from Assemblyline: ${message}`, { upstream: 'assemblyline', transient: false });
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      length += chunk.length;
      if (opts.maxBytes !== undefined && length > opts.maxBytes) return done(fail('SAMPLE_TOO_LARGE', `more than ${opts.maxBytes} bytes`));
      if (opts.size !== undefined && length > opts.size) return done(fail('UPSTREAM_PROTOCOL', `more than the ${opts.size} bytes expected`));
      hash.update(chunk);
      const previous = last;
      last = chunk;
      done(null, previous);
    },
    flush(done: TransformCallback) {
      if (opts.size !== undefined && length !== opts.size) return done(fail('UPSTREAM_PROTOCOL', `${length} bytes, not the ${opts.size} expected`));
      const actual = hash.digest('hex');
      if (actual !== expected) return done(fail('UPSTREAM_PROTOCOL', `content has sha256 ${actual}, not the one it was asked for`));
      done(null, last);
    },
  });
}
