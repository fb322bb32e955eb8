/** `mass-al-bridge check-config --config FILE [--set Section.Key=value]...`: validate and print, secrets masked. */
import { describeConfig } from './describe.js';
import { ConfigError, formatProblem, loadConfig, type ConfigWarning } from './load.js';
import { ENV_PREFIX } from './schema.js';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export const CHECK_CONFIG_USAGE = `Usage: mass-al-bridge check-config [--config FILE] [--set Section.Key=value]...

Loads the configuration (defaults < FILE < MASSAL_* environment < --set), validates it and
prints the effective values as INI with secrets masked and where each value came from.
Exit status: 0 valid, 1 invalid, 2 usage error.
`;

export interface ParsedConfigArgs {
  file?: string;
  cli: Array<{ section: string; key: string; value: string }>;
  help: boolean;
  /** Arguments this parser does not know (the caller decides whether that is an error). */
  rest: string[];
  errors: string[];
}

/** Parses `--config FILE`/`--config=FILE`, `-c FILE` and repeated `--set Section.Key=value`; shared with the run command. */
export function parseConfigArgs(argv: readonly string[]): ParsedConfigArgs {
  const out: ParsedConfigArgs = { cli: [], help: false, rest: [], errors: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const next = () => (inline !== undefined ? inline : argv[++i]);
    if (flag === '-h' || flag === '--help') out.help = true;
    else if (flag === '--config' || flag === '-c') {
      const v = next();
      if (v === undefined || v === '') out.errors.push(`${flag} needs a file name`);
      else out.file = v;
    } else if (flag === '--set') {
      const v = next();
      const m = v === undefined ? null : /^([^.=]+)\.([^=]+)=(.*)$/s.exec(v);
      if (!m) out.errors.push('--set needs Section.Key=value');
      else out.cli.push({ section: m[1].trim(), key: m[2].trim(), value: m[3] });
    } else out.rest.push(arg);
  }
  return out;
}

function formatWarnings(warnings: ConfigWarning[]): string {
  return warnings.map((w) => `warning: ${formatProblem(w)}\n`).join('');
}

/**
 * What every command prints on stderr for a configuration it cannot use: the warnings, then
 * `mass-al-bridge: invalid configuration (N problems):` and one `  - Section.Key (source): message` line each.
 */
export function formatConfigFailure(err: ConfigError): string {
  return `${formatWarnings(err.warnings)}mass-al-bridge: ${err.message}\n`;
}

/**
 * The complaint when a command got neither `--config FILE` nor any MASSAL_* variable (null when it got one):
 * said first, instead of one "is required" problem per required key.
 */
export function missingConfigSource(args: ParsedConfigArgs, env: Record<string, string | undefined>): string | null {
  if (args.file !== undefined) return null;
  if (Object.keys(env).some((name) => name.startsWith(ENV_PREFIX) && env[name] !== undefined)) return null;
  return `no configuration: give --config FILE (or set ${ENV_PREFIX}* environment variables, see docs/configuration.md)`;
}

export async function checkConfigCommand(argv: readonly string[], env: Record<string, string | undefined>): Promise<CommandResult> {
  const args = parseConfigArgs(argv[0] === 'check-config' ? argv.slice(1) : argv);
  if (args.help) return { exitCode: 0, stdout: CHECK_CONFIG_USAGE, stderr: '' };
  const missing = args.errors.length ? null : missingConfigSource(args, env);
  const usage = [...(missing ? [missing] : []), ...args.errors, ...args.rest.map((a) => `unknown argument '${a}'`)];
  if (usage.length) return { exitCode: 2, stdout: '', stderr: `${usage.map((u) => `mass-al-bridge check-config: ${u}\n`).join('')}\n${CHECK_CONFIG_USAGE}` };
  try {
    const { config, warnings, sources } = loadConfig({ file: args.file, env, cli: args.cli });
    return { exitCode: 0, stdout: describeConfig(config, sources), stderr: formatWarnings(warnings) };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { exitCode: 1, stdout: '', stderr: formatConfigFailure(err) };
  }
}
