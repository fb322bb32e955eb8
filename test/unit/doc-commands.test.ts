/**
 * Documented commands run as written in a checkout: every command of a fenced block whose info
 * string is `sh runnable` in README.md and docs/*.md is run with bash in the repository root
 * (without the caller's MASSAL_* variables) and must exit 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The commands of every `sh runnable` block: backslash continuations joined, comments and blank lines left out. */
function runnableCommands(markdown: string): string[] {
  const commands: string[] = [];
  const blocks = markdown.matchAll(/^( *)```sh runnable *\n([\s\S]*?)^\1```\s*$/gm);
  for (const [, indent, body] of blocks) {
    const lines = body.split('\n').map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l));
    const joined = lines.join('\n').replace(/[ \t]*\\\n\s*/g, ' ');
    for (const line of joined.split('\n')) if (line.trim() && !line.trim().startsWith('#')) commands.push(line.trim());
  }
  return commands;
}

/** Newest modification time (ms) of any file under `dir`. */
function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return t;
}

test('runnableCommands finds the commands of `sh runnable` blocks only', () => {
  const md = ['```sh', 'rm -rf /', '```', '', '   ```sh runnable', '   echo one # and a comment', '   # a comment line', '   echo \\', '     two', '   ```', ''].join('\n');
  assert.deepEqual(runnableCommands(md), ['echo one # and a comment', 'echo two']);
});

test('every runnable command of README.md and docs/ runs as written in a checkout', { timeout: 300_000 }, async () => {
  const found = DOCS.map((file) => ({ file, commands: runnableCommands(readFileSync(join(ROOT, file), 'utf8')) }));
  assert.ok(found.find((f) => f.file === 'README.md')!.commands.length >= 3, 'the README shows runnable commands');
  // `npm ci` builds dist/ (the CLI's bin runs it); rebuild when the sources changed since.
  const built = statSync(join(ROOT, 'dist/cli.js'), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  if (built < newest(join(ROOT, 'src'))) await run('npm', ['run', 'build'], { cwd: ROOT, timeout: 240_000 });
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MASSAL_')));
  for (const { file, commands } of found) {
    for (const command of commands) {
      try {
        await run('bash', ['-euo', 'pipefail', '-c', command], { cwd: ROOT, env, timeout: 60_000 });
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        assert.fail(`${file}: \`${command}\` exited ${e.code}\n${e.stderr ?? ''}${e.stdout ?? ''}`);
      }
    }
  }
});
