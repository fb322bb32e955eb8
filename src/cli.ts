#!/usr/bin/env node
/** The only module that touches process: argv, env, stdout, signals and exit codes. */
import { VERSION } from './version.js';

const HELP = `mass-al-bridge ${VERSION}: Assemblyline 4 as an analysis system of MASS

Usage: mass-al-bridge <command> [options]

Commands:
  run --config FILE [--once]            run the bridge service
  demo [--exit-when-done]               simulators + bridge on loopback, with a seeded demo
  simulate [--mass-port N] [--al-port M] [--write-config FILE]
                                        start the MASS and Assemblyline simulators
  register --config FILE --admin-key-file F
                                        create the analysis system and an instance on MASS
  check-config --config FILE            print the effective configuration, secrets masked

Options:
  -h, --help       this help
  -V, --version    the version
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (command === '-V' || command === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  process.stderr.write(`unknown command '${command}' (args: ${rest.length})\n\n${HELP}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`mass-al-bridge: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
