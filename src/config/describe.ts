/** Printing the configuration: effective values with secrets masked, and the documentation table. */
import type { BridgeConfig } from './types.js';
import { CONFIG_KEYS, SECTIONS, envName, keyId, type ConfigKeySpec } from './schema.js';
import { DEFAULT_IDENTITY, IDENTITY_SECTION, identityEnvName } from './identities.js';

export const MASK = '********';

function valueOf(config: BridgeConfig, spec: ConfigKeySpec): unknown {
  const group = config[spec.path[0]] as unknown as Record<string, unknown>;
  return group[spec.path[1]];
}

/**
 * The effective configuration as INI that check-config and run accept again: each key preceded
 * by a comment line naming where its value came from (the INI rules have no inline comments).
 * A secret that is set prints only as a commented-out `; Key = ********` line: supply it again
 * the way it came (a *_FILE variable, say); an empty secret prints as an empty value.
 */
export function describeConfig(config: BridgeConfig, sources: Record<string, string>): string {
  const out: string[] = [
    '; mass-al-bridge effective configuration',
    `; MASS API root: ${config.global.apiRoot}`,
    '; Secrets are not printed: their lines are commented out; supply them again (e.g. MASSAL_<SECTION>_<KEY>_FILE).',
  ];
  for (const section of SECTIONS) {
    out.push('', `[${section}]`);
    for (const spec of CONFIG_KEYS.filter((s) => s.section === section)) {
      const text = spec.format(valueOf(config, spec)).replace(/\n/g, ',');
      out.push(`; ${sources[keyId(spec)] ?? 'default'}`);
      if (spec.secret && text !== '') out.push(`; ${spec.key} = ${MASK}`);
      else out.push(`${spec.key} = ${text}`);
    }
    if (section !== IDENTITY_SECTION) continue;
    for (const identity of config.mass.identities ?? []) {
      const id = `${IDENTITY_SECTION}:${identity.name}`;
      out.push('', `[${id}]`, `; ${sources[`${id}.UUID`] ?? 'default'}`, `UUID = ${identity.uuid}`, `; ${sources[`${id}.mass api key`] ?? 'default'}`);
      out.push(identity.apiKey === '' ? 'mass api key =' : `; mass api key = ${MASK}`);
    }
  }
  return `${out.join('\n')}\n`;
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (s: string) => (s === '' ? '' : `\`${s}\``);

/** Markdown table of every key: section, key, environment variable, default, description. */
export function renderConfigTable(): string {
  const lines = ['| Section | Key | Environment variable | Default | Description |', '|---|---|---|---|---|'];
  for (const spec of CONFIG_KEYS) {
    const env = envName(spec.section, spec.key);
    const envCell = spec.secret ? `${code(env)}, ${code(`${env}_FILE`)}` : code(env);
    const def = spec.required ? (spec.default ? `${code(spec.default)} (required)` : '**required**') : spec.derivedDefault ? spec.derivedDefault : spec.default === '' ? '(empty)' : code(spec.default);
    const notes = [spec.description, spec.secret ? 'Secret: never printed.' : '', spec.readableFile ? 'Must be a readable file.' : ''].filter(Boolean).join('. ').replace(/\.\./g, '.');
    lines.push(`| ${cell(spec.section)} | ${cell(spec.key)} | ${envCell} | ${cell(def)} | ${cell(notes)} |`);
  }
  return `${lines.join('\n')}\n`;
}

/** The whole docs/configuration.md; written by src/config/write-docs.ts, compared by a test. */
export function renderConfigurationDoc(): string {
  return `# Configuration reference

<!-- Generated from src/config/schema.ts by \`node --import tsx src/config/write-docs.ts\`; do not edit by hand. -->

The bridge reads an INI file in the style of the MASS client tutorial (\`--config FILE\`).
Section and key names are case-insensitive; spaces, \`-\` and \`_\` in key names are ignored
when matching. Lines starting with \`#\` or \`;\` are comments; there are no inline comments
(a value runs to the end of its line) and quotes are kept as part of the value.

Precedence, highest first: command-line overrides, environment variables, the INI file,
the defaults below. Every key can be set with \`MASSAL_<SECTION>_<KEY>\` (upper case, spaces
and dashes as \`_\`). Secrets can also be read from a file named by \`<variable>_FILE\` (for
Docker secrets; a trailing newline is removed); setting both the variable and its \`_FILE\`
form is an error.

Durations are in seconds (decimals allowed), sizes in bytes. Booleans accept
true/false, yes/no, on/off and 1/0. Unknown sections, keys and \`MASSAL_*\` variables are
reported as warnings naming the closest known key; a section that looks like a mistyped
\`[AssemblylineAnalysis:NAME]\` (such as \`[AssemblylineAnalyses:lab2]\` or \`[AssemblylineAnalysis lab2]\`)
is an error, since that identity would otherwise never poll; so is any other unknown section that
sets \`UUID\` or \`mass api key\`. \`mass-al-bridge check-config --config FILE\`
prints the effective configuration with where each value came from on a comment line above
each key. The output loads again as it is, except that a secret that is set prints as a
commented-out \`; Key = ********\` line: supply it again (for example through its \`_FILE\` variable).

${renderConfigTable()}
## Several identities in one process

MASS gives an instance of an analysis system new work only while it has at most 100 pending
scheduled analyses, so one instance never has much more than 100 samples in flight. To keep a
larger Assemblyline busy, one bridge process can serve several instances ("identities") of the
same analysis system: each is a section \`[${IDENTITY_SECTION}:NAME]\` with its own \`UUID\` and
\`mass api key\` (both required). \`[${IDENTITY_SECTION}]\` stays the first identity, named
\`${DEFAULT_IDENTITY}\`. Every other key of \`[${IDENTITY_SECTION}]\` (PollTime, SystemName, Timeout,
VerifyTLS, CAFile) applies to all identities; the other sections are shared by all of them.

NAME is 1 to 32 letters, digits, \`-\` or \`_\`; names compare like section names (case and
\`-\`/\`_\` ignored: \`[AssemblylineAnalysis:Lab2]\` and \`[AssemblylineAnalysis:lab2]\` are one section, and
a file with both is refused, naming the difference), and \`${DEFAULT_IDENTITY}\` is taken. Each identity's keys can also be set with
\`${identityEnvName('NAME', 'UUID')}\` and \`${identityEnvName('NAME', 'mass api key')}\` (or
\`${identityEnvName('NAME', 'mass api key')}_FILE\`), NAME in upper case with \`-\` as \`_\`; an
identity may be given by its variables alone. No two identities may share a UUID.
\`mass-al-bridge register --instances K\` creates the instances and prints the sections to paste.
`;
}

/** An INI file setting every key to its default, each preceded by its description. */
export function renderExampleIni(placeholders: Record<string, string> = {}): string {
  const out: string[] = [];
  for (const section of SECTIONS) {
    out.push(`[${section}]`);
    for (const spec of CONFIG_KEYS.filter((s) => s.section === section)) {
      const env = envName(spec.section, spec.key);
      const def = spec.derivedDefault ? `${spec.derivedDefault} (when empty)` : spec.default === '' ? '(empty)' : spec.default;
      out.push(`; ${spec.description}.`);
      out.push(`; Default: ${spec.required && spec.default === '' ? 'none, required' : def}. Environment: ${env}${spec.secret ? ` or ${env}_FILE` : ''}.`);
      out.push(`${spec.key} = ${placeholders[keyId(spec)] ?? spec.default}`.trimEnd(), '');
    }
  }
  return out.join('\n');
}
