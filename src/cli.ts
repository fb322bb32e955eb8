#!/usr/bin/env node
/** The only module that touches process: argv, env, stdout, signals and exit codes. */
import { parseArgs } from 'node:util';
import closeWithGrace from 'close-with-grace';
import { VERSION } from './version.js';
import { createLogger, type Logger } from './log.js';

const HELP = `mass-al-bridge ${VERSION}: Assemblyline 4 as an analysis system of MASS

Usage: mass-al-bridge <command> [options]

Commands:
  run --config FILE [--once] [--set Section.Key=value]...
                                        run the bridge service
  demo [--exit-when-done] [--api-port N]
                                        simulators + bridge on loopback, with a seeded demo
  simulate [--host H] [--mass-port N] [--al-port M] [--mass-admin-key K] [--al-user U]
           [--al-apikey NAME:SECRET] [--write-config FILE] [--state-dir DIR]
                                        start the MASS and Assemblyline simulators
  register --config FILE --admin-key-file F
                                        create the analysis system and an instance on MASS
  check-config --config FILE [--set Section.Key=value]...
                                        print the effective configuration, secrets masked
  doctor --config FILE [--set Section.Key=value]...
                                        check that MASS, Assemblyline and the ledger answer as needed

Options:
  -h, --help       this help
  -V, --version    the version
`;

type Env = Record<string, string | undefined>;

function makeLogger(level: string | undefined): Logger {
  return createLogger({ level: level ?? process.env.MASSAL_BRIDGE_LOGLEVEL ?? 'info', pretty: Boolean(process.stdout.isTTY) && !process.env.NO_PRETTY_LOGS });
}

/** Runs a long-lived command: the first SIGINT/SIGTERM aborts it gracefully, a second one exits at once. */
async function supervise(graceMs: number, logger: Logger, body: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const ac = new AbortController();
  let running: Promise<number> = Promise.resolve(0);
  const handle = closeWithGrace(
    { delay: graceMs, logger: false, skip: ['beforeExit'], onSecondSignal: (sig: string) => logger.warn({ signal: sig }, 'second signal: exiting now') },
    async ({ signal, err }) => {
      if (err) logger.error({ err }, 'fatal error, shutting down');
      else logger.info({ signal }, 'signal received, shutting down gracefully');
      ac.abort();
      const code = await running.catch(() => 1);
      if (err || code !== 0) throw err ?? new Error(`exit code ${code}`);
    },
  );
  running = body(ac.signal);
  try {
    return await running;
  } finally {
    handle.uninstall();
  }
}

function fail(message: string): number {
  process.stderr.write(`mass-al-bridge: ${message}\n`);
  return 2;
}

/** Parses `--config FILE` / `--set` (plus the flags a command allows) and loads the configuration; a number is the exit code. */
async function loadFromArgs(rest: string[], env: Env, allowed: readonly string[] = [], relax: { allowMissingSecrets?: boolean; optional?: string[] } = {}) {
  const { parseConfigArgs, loadConfig, ConfigError, formatProblem } = await import('./config/index.js');
  const args = parseConfigArgs(rest);
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const unknown = args.rest.filter((a) => !allowed.includes(a));
  if (args.errors.length || unknown.length) return fail([...args.errors, ...unknown.map((a) => `unknown argument '${a}'`)].join('; '));
  try {
    return { ...loadConfig({ file: args.file, env, cli: args.cli, ...relax }), flags: args.rest, formatProblem };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`mass-al-bridge: invalid configuration:\n${err.problems.map((p) => `  - ${formatProblem(p)}\n`).join('')}`);
      return 1;
    }
    throw err;
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const env: Env = process.env;
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (command === '-V' || command === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  switch (command) {
    case 'check-config': {
      const { checkConfigCommand } = await import('./config/index.js');
      const r = await checkConfigCommand(rest, env);
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
      return r.exitCode;
    }
    case 'simulate': {
      const { values } = parseArgs({
        args: rest,
        options: {
          host: { type: 'string', default: '127.0.0.1' },
          'mass-port': { type: 'string', default: '5000' },
          'al-port': { type: 'string', default: '5001' },
          'mass-admin-key': { type: 'string' },
          'al-user': { type: 'string' },
          'al-apikey': { type: 'string' },
          'write-config': { type: 'string' },
          'state-dir': { type: 'string' },
          'log-level': { type: 'string', default: 'warn' },
        },
        strict: true,
      });
      const logger = makeLogger(values['log-level']);
      const { simulateCommand } = await import('./commands/simulate.js');
      return supervise(5000, logger, (signal) =>
        simulateCommand({
          host: values.host!,
          massPort: Number(values['mass-port']),
          alPort: Number(values['al-port']),
          massAdminKey: values['mass-admin-key'],
          alUser: values['al-user'],
          alApiKey: values['al-apikey'],
          writeConfig: values['write-config'],
          stateDir: values['state-dir'],
          out: process.stdout,
          logger,
          signal,
        }),
      );
    }
    case 'run': {
      const loaded = await loadFromArgs(rest, env, ['--once']);
      if (typeof loaded === 'number') return loaded;
      const logger = makeLogger(loaded.config.bridge.logLevel);
      for (const w of loaded.warnings) logger.warn(`configuration: ${loaded.formatProblem(w)}`);
      const { runCommand } = await import('./bridge/commands.js');
      const graceMs = loaded.config.bridge.gracePeriod * 1000;
      const once = loaded.flags.includes('--once');
      return supervise(graceMs + 5000, logger, (signal) => runCommand({ config: loaded.config, logger, signal, once }));
    }
    case 'doctor': {
      const loaded = await loadFromArgs(rest, env);
      if (typeof loaded === 'number') return loaded;
      for (const w of loaded.warnings) process.stderr.write(`warning: ${loaded.formatProblem(w)}\n`);
      const { doctorCommand } = await import('./commands/doctor.js');
      return doctorCommand({ config: loaded.config, out: process.stdout });
    }
    case 'register': {
      const keyIdx = rest.findIndex((a) => a === '--admin-key-file' || a.startsWith('--admin-key-file='));
      let keyFile: string | undefined;
      const remaining = [...rest];
      if (keyIdx >= 0) {
        const arg = rest[keyIdx];
        keyFile = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : rest[keyIdx + 1];
        remaining.splice(keyIdx, arg.includes('=') ? 1 : 2);
      }
      if (!keyFile) return fail('register needs --admin-key-file F (a file holding a MASS admin API key)');
      // The instance key does not exist yet: register only needs the MASS location.
      const loaded = await loadFromArgs(remaining, env, [], { allowMissingSecrets: true, optional: ['AssemblylineAnalysis.UUID'] });
      if (typeof loaded === 'number') return loaded;
      const { readFileSync } = await import('node:fs');
      let adminKey: string;
      try {
        adminKey = readFileSync(keyFile, 'utf8').trim();
      } catch (err) {
        return fail(`cannot read the admin key file ${keyFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      const { registerCommand } = await import('./bridge/commands.js');
      return registerCommand({ config: loaded.config, adminKey, stdout: process.stdout });
    }
    case 'demo': {
      const { values } = parseArgs({
        args: rest,
        options: {
          'exit-when-done': { type: 'boolean', default: false },
          'api-port': { type: 'string', default: '8080' },
          'log-level': { type: 'string', default: 'warn' },
        },
        strict: true,
      });
      const logger = makeLogger(values['log-level']);
      const { demoCommand } = await import('./commands/demo.js');
      return supervise(15000, logger, (signal) =>
        demoCommand({
          exitWhenDone: values['exit-when-done']!,
          apiPort: Number(values['api-port']),
          out: process.stdout,
          isTTY: Boolean(process.stdout.isTTY),
          logger,
          signal,
        }),
      );
    }
    default:
      process.stderr.write(`unknown command '${command}'\n\n${HELP}`);
      return 2;
  }
}

// A reader of stdout that goes away (`| head -1`, a killed `| tee`, a closed terminal) is no reason to crash:
// the output is dropped and the process carries on until its work is done or a signal stops it.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE' && err.code !== 'EIO') throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`mass-al-bridge: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
