/**
 * Finds the Chromium (or Chrome) executable the browser tests drive through playwright-core.
 * Order: `CHROMIUM_PATH` if set (and then only it), each of CHROMIUM_NAMES in each folder of
 * `PATH`, then the fixed CHROMIUM_FALLBACKS. Nothing is downloaded.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Executable names looked up on PATH, in this order. */
export const CHROMIUM_NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

/** Places looked at when nothing on PATH fits: Debian's package, Google Chrome and Chromium on macOS. */
export const CHROMIUM_FALLBACKS = [
  '/usr/bin/chromium',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
];

/** What to install, per system, when no Chromium is found. */
export const INSTALL_HINT = [
  'Install Chromium or Google Chrome, or point CHROMIUM_PATH at one:',
  '  Debian:          sudo apt-get install chromium',
  '  Ubuntu:          sudo snap install chromium   (or: sudo apt-get install chromium-browser)',
  '  Fedora:          sudo dnf install chromium',
  '  macOS:           brew install --cask chromium   (or install Google Chrome)',
  '  anywhere else:   CHROMIUM_PATH=/path/to/chrome npm run test:e2e',
].join('\n');

/** A regular file the current user may execute. */
export function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export interface FindChromiumOptions {
  /** Environment to read `CHROMIUM_PATH` and `PATH` from. */
  env: Record<string, string | undefined>;
  /** Fixed places tried last; defaults to CHROMIUM_FALLBACKS. */
  fallbacks?: string[];
  /** Whether a path is an executable file; defaults to isExecutableFile. */
  isExecutable?: (path: string) => boolean;
}

/** Either the executable's path, or a message for the user that says what was tried and what to install. */
export type FindChromiumResult = { path: string; source: string } | { path: null; message: string };

/**
 * Looks for Chromium as described in the module comment. A `CHROMIUM_PATH` that is set but not an
 * executable file is an error of its own (no silent fallback to another browser).
 */
export function findChromium(options: FindChromiumOptions): FindChromiumResult {
  const { env, fallbacks = CHROMIUM_FALLBACKS, isExecutable = isExecutableFile } = options;
  const explicit = env.CHROMIUM_PATH?.trim();
  if (explicit) {
    if (isExecutable(explicit)) return { path: explicit, source: 'CHROMIUM_PATH' };
    return { path: null, message: `CHROMIUM_PATH is ${explicit}, which is not an executable file.\n${INSTALL_HINT}` };
  }
  const dirs = (env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  for (const name of CHROMIUM_NAMES) {
    for (const dir of dirs) {
      const candidate = join(dir, name);
      if (isExecutable(candidate)) return { path: candidate, source: `${name} on PATH` };
    }
  }
  for (const candidate of fallbacks) if (isExecutable(candidate)) return { path: candidate, source: candidate };
  return {
    path: null,
    message:
      `No Chromium found for the browser tests. Looked for CHROMIUM_PATH (not set), ${CHROMIUM_NAMES.join(', ')} on PATH, ` +
      `and ${fallbacks.join(', ')}.\n${INSTALL_HINT}`,
  };
}
