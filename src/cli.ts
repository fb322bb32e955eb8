#!/usr/bin/env node
/** The only module that touches process: argv, env, stdout, signals and exit codes. */
import { closeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import closeWithGrace from 'close-with-grace';
import { VERSION } from './version.js';
import { createLogger, type Logger } from './log.js';

const HELP = `mass-al-bridge ${VERSION}: Assemblyline 4 as an analysis system of MASS

Usage: mass-al-bridge <command> [options]

Commands:
  run --config FILE [--once] [--set Section.Key=value]...
                                        run the bridge service
  demo [--exit-when-done] [--api-port N] [--locked-down]
                                        simulators + bridge on loopback, with a seeded demo
  simulate [--host H] [--mass-port N] [--al-port M] [--mass-admin-key K] [--al-user U]
           [--al-apikey NAME:SECRET] [--write-config FILE] [--state-dir DIR] [--locked-down]
           [--log-level LEVEL]
                                        start the MASS and Assemblyline simulators
  register --config FILE --admin-key-file F [--instances K]
                                        create the analysis system and its instance(s) on MASS
  check-config --config FILE [--set Section.Key=value]...
                                        print the effective configuration, secrets masked
  doctor --config FILE [--set Section.Key=value]...
                                        check that MASS, Assemblyline and the ledger answer as needed

Options:
  -h, --help       this help
  -V, --version    the version
`;

const CONFIG_OPTIONS = `  --config FILE, -c FILE      the INI configuration (docs/configuration.md); without it the
                              configuration comes from MASSAL_* environment variables only
  --set Section.Key=value     override one key (repeatable; beats file and environment)
  -h, --help                  this help`;

/** Each command's own usage, printed by `mass-al-bridge <command> --help`. */
const USAGE: Record<string, string> = {
  run: `Usage: mass-al-bridge run --config FILE [--once] [--set Section.Key=value]...

Runs the bridge service: polls MASS, analyses in Assemblyline, reports back; serves the status API.
The first SIGINT/SIGTERM stops it gracefully (up to [Bridge] GracePeriod), a second one at once.

Options:
${CONFIG_OPTIONS}
  --once                      work until nothing is pending or in flight, then exit
                              (0: done, 1: work remains)

Exit status: 0 stopped by a signal (or --once done); 1 --once left work, or the bridge could
not start (invalid configuration, a ledger that cannot be opened, [API] Listen in use); 2 usage
error; 3 the ledger could not make its writes durable (a failed fsync of its WAL file): the
bridge stopped, restart it (a supervisor does) once the disk works.
`,
  demo: `Usage: mass-al-bridge demo [--exit-when-done] [--api-port N] [--locked-down] [--log-level LEVEL]

Starts both simulators and the bridge on loopback with a temporary ledger, seeds samples that
show extracted files, IOCs, failures and a duplicate, shows progress and a summary table.

Options:
  --exit-when-done            exit once every analysis is reported (0: settled, 1: not settled;
                              3 at any time: the ledger could not make its writes durable)
  --api-port N                port of the status page and API on 127.0.0.1 (default 8080;
                              a free port is taken when it is in use; 0: any free port)
  --locked-down               the Assemblyline user is locked down like a production service
                              account: no submission_customize role, the submission profile
                              static (restricts priority, services, ignore_cache), a required
                              metadata field sensor, clearance TLP:AMBER, quotas of 5 async
                              submissions and 3000 API calls a day; the bridge is configured
                              for it (SubmissionProfile, Metadata, Priority empty, Classification)
  --log-level LEVEL           log level of the simulators and the bridge (default warn)
  -h, --help                  this help
`,
  simulate: `Usage: mass-al-bridge simulate [options]

Starts the MASS and Assemblyline simulators and prints their keys; with --write-config, writes a
bridge configuration that uses them. Runs until Ctrl-C.

Options:
  --host H                    address to listen on (default 127.0.0.1)
  --mass-port N               MASS simulator port (default 5000; 0: any free port)
  --al-port M                 Assemblyline simulator port (default 5001; 0: any free port)
  --mass-admin-key K          the MASS admin API key to accept (default: a random one)
  --al-user U                 the Assemblyline user (default mass-bridge)
  --al-apikey NAME:SECRET     the Assemblyline API key to accept (default: a random one)
  --write-config FILE         write a bridge configuration for these simulators to FILE
  --state-dir DIR             [Bridge] StateDir of the written configuration
  --locked-down               lock the Assemblyline user down like a production service account
                              (no submission_customize, profile static restricting priority,
                              services and ignore_cache, required metadata field sensor,
                              clearance TLP:AMBER, 5 async submissions, 3000 API calls a day);
                              --write-config then writes the matching [Assemblyline] keys,
                              QueuePollTime = 60 and QueueReadsPerMinute = 1 (queue reads,
                              idle or not, within half the daily API quota)
  --log-level LEVEL           log level (default warn)
  -h, --help                  this help
`,
  register: `Usage: mass-al-bridge register --config FILE --admin-key-file F [--instances K] [--set Section.Key=value]...

Creates the analysis system [AssemblylineAnalysis] SystemName on MASS (tag filter
sample-type:filesample) and an instance of it, unless they exist. Prints the instance UUID;
MASS hands out the instance key only in its web UI (see docs/operations.md).
The configuration needs [GLOBAL] ServerURL; instance UUID and key may still be empty.
With --instances K it makes sure K instances exist, one per identity: [AssemblylineAnalysis]
and the [AssemblylineAnalysis:NAME] sections in order, then new ones named identity2, ...
(their UUIDs derived from the first one's, so a second run finds them), and prints the
INI sections to paste.

Options:
  --admin-key-file F          a file holding the API key of a MASS admin user (read, never printed)
  --instances K               how many instances (identities) to make sure exist (default 1)
${CONFIG_OPTIONS}
`,
  doctor: `Usage: mass-al-bridge doctor --config FILE [--set Section.Key=value]...

Checks, without changing anything, that MASS accepts the instance key and UUID, that
Assemblyline accepts the user for ingest and the notification queue, and that the ledger in
[Bridge] StateDir is usable. Each failure comes with its fix. Exit status: 0 all ok, 1 problems.

Options:
${CONFIG_OPTIONS}
`,
};

type Env = Record<string, string | undefined>;

function makeLogger(level: string | undefined): Logger {
  return createLogger({ level: level ?? process.env.MASSAL_BRIDGE_LOGLEVEL ?? 'info', pretty: Boolean(process.stdout.isTTY) && !process.env.NO_PRETTY_LOGS });
}

/**
 * Signals close-with-grace listens to by default that must stay fatal: a JS listener for a fault
 * (SIGSEGV, SIGBUS, SIGFPE, SIGILL) makes libuv return from the fault handler, so the faulting
 * instruction runs again for ever at 100% CPU instead of the process ending (Node's docs warn
 * against listening to them); SIGABRT and SIGTRAP likewise come from native code that cannot go on.
 */
const FATAL_SIGNALS = ['SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGABRT', 'SIGTRAP'] as const;

/**
 * Runs a long-lived command: the first SIGINT, SIGTERM, SIGHUP (terminal closed), SIGQUIT or
 * SIGUSR2 aborts it gracefully, a second one exits at once; after graceMs it exits regardless.
 */
async function supervise(graceMs: number, logger: Logger, body: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const ac = new AbortController();
  let running: Promise<number> = Promise.resolve(0);
  const handle = closeWithGrace(
    { delay: graceMs, logger: false, skip: ['beforeExit', ...FATAL_SIGNALS], onSecondSignal: (sig: string) => logger.warn({ signal: sig }, 'second signal: exiting now') },
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

/** True when the MASS at `serverUrl` is this project's simulator (it answers its /_sim/state control endpoint). */
async function isMassSimulator(serverUrl: string): Promise<boolean> {
  try {
    const res = await fetch(new URL('/_sim/state', serverUrl), { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return false;
    const body = (await res.json()) as Record<string, unknown>;
    return typeof body.scheduled_pending === 'number' && Array.isArray(body.reports);
  } catch {
    return false;
  }
}

/** The value of option `--name` as a TCP port: an integer from 0 to 65535, else the usage error's message. */
function portOption(name: string, value: string | undefined): number | string {
  const text = (value ?? '').trim();
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) return `--${name} must be a port number from 0 to 65535 (0: any free port), not '${value ?? ''}'`;
  return Number(text);
}

/** A usage error: the message, then the command's usage, exit status 2. */
function usageError(command: string, message: string): number {
  process.stderr.write(`mass-al-bridge ${command}: ${message}\n\n${USAGE[command] ?? HELP}`);
  return 2;
}

/** Parses `--config FILE` / `--set` (plus the flags a command allows) and loads the configuration; a number is the exit code. */
async function loadFromArgs(command: string, rest: string[], env: Env, allowed: readonly string[] = [], relax: { allowMissingSecrets?: boolean; optional?: string[] } = {}) {
  const { parseConfigArgs, loadConfig, ConfigError, formatProblem, formatConfigFailure, missingConfigSource } = await import('./config/index.js');
  const args = parseConfigArgs(rest);
  if (args.help) {
    process.stdout.write(USAGE[command] ?? HELP);
    return 0;
  }
  const unknown = args.rest.filter((a) => !allowed.includes(a));
  if (args.errors.length || unknown.length) return usageError(command, [...args.errors, ...unknown.map((a) => `unknown argument '${a}'`)].join('; '));
  const missing = missingConfigSource(args, env);
  if (missing) return usageError(command, missing);
  try {
    return { ...loadConfig({ file: args.file, env, cli: args.cli, ...relax }), flags: args.rest, formatProblem };
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(formatConfigFailure(err));
      return 1;
    }
    throw err;
  }
}

/** parseArgs for the commands without a configuration; `--help` and unknown options are handled here (a number is the exit code). */
function parseCommandArgs(command: string, args: string[], options: NonNullable<ParseArgsConfig['options']>): number | Record<string, string | undefined> {
  try {
    const parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
    if (parsed.values.help) {
      process.stdout.write(USAGE[command]);
      return 0;
    }
    return Object.fromEntries(Object.entries(parsed.values).map(([k, v]) => [k, v === undefined ? undefined : String(v)]));
  } catch (err) {
    return usageError(command, err instanceof Error ? err.message : String(err));
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
      const values = parseCommandArgs('simulate', rest, {
          host: { type: 'string', default: '127.0.0.1' },
          'mass-port': { type: 'string', default: '5000' },
          'al-port': { type: 'string', default: '5001' },
          'mass-admin-key': { type: 'string' },
          'al-user': { type: 'string' },
          'al-apikey': { type: 'string' },
          'write-config': { type: 'string' },
          'state-dir': { type: 'string' },
          'locked-down': { type: 'boolean', default: false },
          'log-level': { type: 'string', default: 'warn' },
      });
      if (typeof values === 'number') return values;
      const massPort = portOption('mass-port', values['mass-port']);
      if (typeof massPort === 'string') return usageError('simulate', massPort);
      const alPort = portOption('al-port', values['al-port']);
      if (typeof alPort === 'string') return usageError('simulate', alPort);
      if (massPort !== 0 && massPort === alPort) {
        return usageError('simulate', `--mass-port and --al-port are both ${massPort}: the two simulators need a port each (0: any free port)`);
      }
      const logger = makeLogger(values['log-level']);
      const { simulateCommand } = await import('./commands/simulate.js');
      return supervise(5000, logger, (signal) =>
        simulateCommand({
          host: values.host!,
          massPort,
          alPort,
          massAdminKey: values['mass-admin-key'],
          alUser: values['al-user'],
          alApiKey: values['al-apikey'],
          writeConfig: values['write-config'],
          stateDir: values['state-dir'],
          lockedDown: values['locked-down'] === 'true',
          out: process.stdout,
          logger,
          signal,
        }),
      );
    }
    case 'run': {
      const loaded = await loadFromArgs('run', rest, env, ['--once']);
      if (typeof loaded === 'number') return loaded;
      const logger = makeLogger(loaded.config.bridge.logLevel);
      for (const w of loaded.warnings) logger.warn(`configuration: ${loaded.formatProblem(w)}`);
      const { runCommand } = await import('./bridge/commands.js');
      const graceMs = loaded.config.bridge.gracePeriod * 1000;
      const once = loaded.flags.includes('--once');
      const { crashPointFromSpec } = await import('./bridge/crash-point.js');
      // Test-only: MASSAL_TEST_CRASH_AT=<point>[:N] SIGKILLs this process at a named side-effect boundary.
      const crashPoint = crashPointFromSpec(env.MASSAL_TEST_CRASH_AT, () => process.kill(process.pid, 'SIGKILL'));
      if (crashPoint) logger.warn({ crashAt: env.MASSAL_TEST_CRASH_AT }, 'test-only crash point armed (MASSAL_TEST_CRASH_AT)');
      return supervise(graceMs + 5000, logger, (signal) => runCommand({ config: loaded.config, logger, signal, once, crashPoint }));
    }
    case 'doctor': {
      const loaded = await loadFromArgs('doctor', rest, env);
      if (typeof loaded === 'number') return loaded;
      for (const w of loaded.warnings) process.stderr.write(`warning: ${loaded.formatProblem(w)}\n`);
      const { doctorCommand } = await import('./commands/doctor.js');
      return doctorCommand({ config: loaded.config, out: process.stdout, massIsSimulator: await isMassSimulator(loaded.config.global.serverUrl) });
    }
    case 'register': {
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(USAGE.register);
        return 0;
      }
      const keyIdx = rest.findIndex((a) => a === '--admin-key-file' || a.startsWith('--admin-key-file='));
      let keyFile: string | undefined;
      const remaining = [...rest];
      if (keyIdx >= 0) {
        const arg = rest[keyIdx];
        keyFile = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : rest[keyIdx + 1];
        remaining.splice(keyIdx, arg.includes('=') ? 1 : 2);
      }
      let instances = 1;
      const countIdx = remaining.findIndex((a) => a === '--instances' || a.startsWith('--instances='));
      if (countIdx >= 0) {
        const arg = remaining[countIdx];
        const text = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : remaining[countIdx + 1];
        remaining.splice(countIdx, arg.includes('=') ? 1 : 2);
        // The sizing table of docs/operations.md §5 reaches about 125 identities; 1000 stops a typo (10000) early.
        if (text === undefined || !/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 1000) {
          return usageError('register', '--instances needs a whole number from 1 to 1000');
        }
        instances = Number(text);
      }
      // The instance key does not exist yet: register only needs the MASS location.
      const loaded = await loadFromArgs('register', remaining, env, [], { allowMissingSecrets: true, optional: ['AssemblylineAnalysis.UUID'] });
      if (typeof loaded === 'number') return loaded;
      if (!keyFile) return usageError('register', 'register needs --admin-key-file F (a file holding a MASS admin API key)');
      const { readFileSync } = await import('node:fs');
      let adminKey: string;
      try {
        adminKey = readFileSync(keyFile, 'utf8').trim();
      } catch (err) {
        return fail(`cannot read the admin key file ${keyFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      const { registerCommand } = await import('./bridge/commands.js');
      const code = await registerCommand({ config: loaded.config, adminKey, stdout: process.stdout, instances });
      if (code === 0 && (await isMassSimulator(loaded.config.global.serverUrl))) {
        process.stdout.write(
          'This MASS is the mass-al-bridge simulator, which has no web UI: the terminal running `mass-al-bridge simulate`\n' +
            'prints the instance key of every instance created (the seeded instance and its key are in the file --write-config wrote).\n',
        );
      }
      return code;
    }
    case 'demo': {
      const values = parseCommandArgs('demo', rest, {
        'exit-when-done': { type: 'boolean', default: false },
        'api-port': { type: 'string', default: '8080' },
        'locked-down': { type: 'boolean', default: false },
        'log-level': { type: 'string', default: 'warn' },
      });
      if (typeof values === 'number') return values;
      const apiPort = portOption('api-port', values['api-port']);
      if (typeof apiPort === 'string') return usageError('demo', apiPort);
      const logger = makeLogger(values['log-level']);
      const { demoCommand } = await import('./commands/demo.js');
      return supervise(15000, logger, (signal) =>
        demoCommand({
          exitWhenDone: values['exit-when-done'] === 'true',
          apiPort,
          lockedDown: values['locked-down'] === 'true',
          out: process.stdout,
          isTTY: Boolean(process.stdout.isTTY),
          columns: () => process.stdout.columns,
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

// Node 20 aborts in its exit-time terminal reset when the terminal has hung up (tcsetattr answers
// EIO), and that abort then spins for ever at 100% CPU instead of exiting (nodejs/node#51519): a
// bridge whose terminal closed would never end. A descriptor that was a terminal at start and is
// none now (hung up) is closed just before exit, so that the reset skips it.
const STDIO_WAS_TTY = [0, 1, 2].map((fd) => isatty(fd));
process.on('exit', () => {
  for (const fd of [0, 1, 2]) {
    if (!STDIO_WAS_TTY[fd] || isatty(fd)) continue;
    try {
      closeSync(fd);
    } catch {
      // Already closed: nothing to reset.
    }
  }
});

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
