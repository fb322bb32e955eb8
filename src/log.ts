import { pino, type Logger, type DestinationStream, type LoggerOptions } from 'pino';

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

export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    name: settings.name ?? 'mass-al-bridge',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (settings.destination) return pino(options, settings.destination);
  if (settings.pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss' } } });
  }
  return pino(options);
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
