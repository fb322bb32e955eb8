import { pino, type Logger, type DestinationStream, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/** Paths pino censors wherever they appear: credentials never reach a log line. */
export const REDACT_PATHS = [
  'apiKey',
  'apikey',
  'password',
  'token',
  'secret',
  'authorization',
  'cookie',
  '*.apiKey',
  '*.apikey',
  '*.password',
  '*.token',
  '*.secret',
  '*.authorization',
  '*.cookie',
  'headers.authorization',
  'headers["x-apikey"]',
  'headers.cookie',
  'headers["set-cookie"]',
  '*.headers.authorization',
  '*.headers["x-apikey"]',
  '*.headers.cookie',
  '*.headers["set-cookie"]',
  '*.headers["x-xsrf-token"]',
  'headers["x-xsrf-token"]',
  'req.headers.authorization',
  'req.headers["x-apikey"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

export interface LoggerSettings {
  level?: string;
  /** Human-readable output (pino-pretty); the CLI turns it on for a TTY. */
  pretty?: boolean;
  destination?: DestinationStream;
  name?: string;
}

/**
 * Standard output for log lines, written synchronously in this thread. Once the reader is gone
 * (EPIPE: `| head -1`, a killed `| tee`; EIO: the terminal closed) further lines are dropped.
 * pino's default asynchronous stream instead flushes at exit and retries EPIPE for ever, which
 * kept the process from ever exiting on a signal.
 */
function stdoutDestination(): DestinationStream {
  const dest = pino.destination({ dest: 1, sync: true });
  dest.on('error', () => {
    const drop = () => true;
    Object.assign(dest, { write: drop, flushSync: () => undefined, end: () => undefined });
  });
  return dest;
}

/**
 * The service's logger: JSON lines on stdout (or `destination`), pretty-printed when `pretty`;
 * credentials at REDACT_PATHS are censored. Never delays the process's exit.
 */
export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    name: settings.name ?? 'mass-al-bridge',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (settings.destination) return pino(options, settings.destination);
  // pino-pretty in this thread, not as a worker transport: a worker must be drained at exit.
  if (settings.pretty) return pino(options, pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss', sync: true, destination: stdoutDestination() }));
  return pino(options, stdoutDestination());
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
