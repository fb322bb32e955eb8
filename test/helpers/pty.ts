/**
 * A pseudo-terminal for tests, from util-linux `script` (Debian and Ubuntu: package bsdutils or
 * util-linux; present on most Linux systems). No native npm module is needed.
 */
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';

/** Fails the calling test with what to install when util-linux `script` is not on PATH. */
export function requireScript(): void {
  const probe = spawnSync('script', ['--version'], { encoding: 'utf8' });
  assert.ok(
    !probe.error && /util-linux/.test(`${probe.stdout}${probe.stderr}`),
    'this test needs `script` from util-linux on PATH for a pseudo-terminal (Debian/Ubuntu: apt-get install bsdutils; Fedora: util-linux-script)',
  );
}

/** Single-quotes `s` for sh. */
export const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Arguments for `script` that run the sh `command` on a new pseudo-terminal, returning its exit status. */
export function scriptArgs(command: string): string[] {
  return ['-qfec', command, '/dev/null'];
}
