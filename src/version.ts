import { readFileSync } from 'node:fs';

/** The package version, read once from package.json (one level up from src/ under tsx and from dist/). */
export const VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'mass-al-bridge' && pkg.version) return pkg.version;
  } catch {}
  return '0.0.0';
})();
