/**
 * Several identities in one process: each `[AssemblylineAnalysis:NAME]` section is one more instance of the
 * analysis system on MASS, with its own `UUID` and `mass api key`. The `[AssemblylineAnalysis]` section stays the
 * first identity, named `default`. MASS hands an instance new work only while it has at most 100 pending scheduled
 * analyses (MASS.md §3 "Scheduling"), so one identity caps the work in flight; more identities raise that cap.
 */
import type { BridgeConfig, MassIdentityConfig } from './types.js';
import { normalizeName } from './ini.js';
import { ENV_PREFIX, editDistance } from './schema.js';

/** Name of the first identity ([AssemblylineAnalysis] UUID and mass api key): in metrics, the status API and the ledger. */
export const DEFAULT_IDENTITY = 'default';

/** The section of the first identity; the others are `[AssemblylineAnalysis:NAME]`. */
export const IDENTITY_SECTION = 'AssemblylineAnalysis';

/** The keys an identity section may set: the rest of [AssemblylineAnalysis] applies to every identity. */
export const IDENTITY_KEYS = [
  { key: 'UUID', field: 'uuid', secret: false },
  { key: 'mass api key', field: 'apiKey', secret: true },
] as const;
export type IdentityField = (typeof IDENTITY_KEYS)[number]['field'];

const NAME_SHAPE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;

/** NAME of an `[AssemblylineAnalysis:NAME]` section header (case-insensitive section part), else undefined. */
export function identitySectionName(section: string): string | undefined {
  const colon = section.indexOf(':');
  if (colon < 0 || normalizeName(section.slice(0, colon)) !== normalizeName(IDENTITY_SECTION)) return undefined;
  return section.slice(colon + 1).trim();
}

/**
 * NAME of a section header that is no `[AssemblylineAnalysis:NAME]` but looks like a mistyped one: a name after
 * a header part within two letters of `AssemblylineAnalysis`, joined by any separator (`[AssemblylineAnalyses:x]`,
 * `[AssemblylineAnalysis second]`, `[AssemblylineAnalysis.x]`). Undefined for every other header, identity sections included.
 */
export function mistypedIdentitySectionName(section: string): string | undefined {
  if (identitySectionName(section) !== undefined) return undefined;
  const expected = normalizeName(IDENTITY_SECTION);
  for (let i = 0; i < section.length; i++) {
    if (/[A-Za-z0-9]/.test(section[i])) continue;
    const name = section.slice(i + 1).replace(/^[^A-Za-z0-9]+/, '').trim();
    if (name !== '' && editDistance(normalizeName(section.slice(0, i)), expected) <= 2) return name;
  }
  return undefined;
}

/** The identity field a key names (`UUID`, `mass api key`; matched like every key), else undefined. */
export function identityField(key: string): IdentityField | undefined {
  return IDENTITY_KEYS.find((k) => normalizeName(k.key) === normalizeName(key))?.field;
}

/** Why NAME cannot name an identity, or undefined when it can. */
export function identityNameProblem(name: string): string | undefined {
  if (!NAME_SHAPE.test(name)) return 'an identity name is 1 to 32 letters, digits, - or _, starting with a letter or digit';
  if (normalizeName(name) === DEFAULT_IDENTITY) return `'${DEFAULT_IDENTITY}' is the name of the first identity ([${IDENTITY_SECTION}]); choose another name`;
  return undefined;
}

const envPart = (s: string) => s.trim().toUpperCase().replace(/[\s-]+/g, '_');

/** `MASSAL_ASSEMBLYLINEANALYSIS_<NAME>_<KEY>`, e.g. `MASSAL_ASSEMBLYLINEANALYSIS_LAB2_MASS_API_KEY`. */
export function identityEnvName(name: string, key: string): string {
  return `${ENV_PREFIX}${envPart(IDENTITY_SECTION)}_${envPart(name)}_${envPart(key)}`;
}

const ENV_SHAPE = new RegExp(`^${ENV_PREFIX}${envPart(IDENTITY_SECTION)}_([A-Z0-9][A-Z0-9_]*?)_(UUID|MASS_API_KEY)(_FILE)?$`);

/**
 * An identity's environment variable: NAME (as spelled there, lower case), the field and whether it is the
 * `_FILE` form. Undefined for every other name (the first identity's variables have no NAME part).
 */
export function parseIdentityEnv(variable: string): { name: string; field: IdentityField; file: boolean } | undefined {
  const m = ENV_SHAPE.exec(variable);
  if (!m) return undefined;
  const field: IdentityField = m[2] === 'UUID' ? 'uuid' : 'apiKey';
  // Only the key may carry _FILE: a UUID is no secret.
  if (m[3] && field !== 'apiKey') return undefined;
  return { name: m[1].toLowerCase(), field, file: m[3] !== undefined };
}

/** Identity names compare like section names: case-insensitive, ignoring '-' and '_'. */
export const sameIdentityName = (a: string, b: string): boolean => normalizeName(a) === normalizeName(b);

/** Every identity of the configuration, the first ([AssemblylineAnalysis], `default`) first. */
export function massIdentities(config: Pick<BridgeConfig, 'mass'>): MassIdentityConfig[] {
  return [{ name: DEFAULT_IDENTITY, uuid: config.mass.uuid, apiKey: config.mass.apiKey }, ...(config.mass.identities ?? [])];
}
