/** A writable stream that keeps everything written to it as text (what a command printed). */
import { Writable } from 'node:stream';

/** Returns the stream to give a command as its stdout, and `text()`: all it has written so far. */
export function textSink(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}
