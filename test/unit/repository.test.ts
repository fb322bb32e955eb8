/**
 * What a fresh clone on another machine needs: no file of the repository reaches outside it, and
 * every test in it runs. (The samples below are assembled from pieces so that this file does not
 * trip its own checks.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { disabledTests, outsidePaths, REPO_ROOT, textFiles } from '../helpers/repo-scan.js';

const UP = '..' + '/';
const ROOT = '/srv/ci-sample-parent/mass-al-bridge';
const show = (f: Array<{ file: string; line: number; problem: string; text: string }>) =>
  f.map((x) => `${x.file}:${x.line}: ${x.problem}: ${x.text}`).join('\n');

test('outsidePaths flags machine paths, paths beside the checkout and relative paths that climb out', () => {
  const cases: Array<[file: string, line: string, expected: number]> = [
    ['test/unit/a.test.ts', `const F = '/${'home'}/alice/fixtures/x.json';`, 1],
    ['test/unit/a.test.ts', `readFileSync("/${'work'}/shared/protocol/MASS.md")`, 1],
    ['test/unit/a.test.ts', `const F = '/srv/ci-sample-parent/other-project/x.json';`, 1], // under the checkout's parent folder
    ['test/unit/a.test.ts', `new URL('${UP}${UP}${UP}shared/protocol/x/', import.meta.url)`, 2], // climbs out, and into shared
    ['bench/mapping.ts', `new URL('${UP}${UP}elsewhere/x.json', import.meta.url)`, 1],
    ['src/mass/client.ts', ` * MASS API client (${UP}shared/protocol/MASS.md).`, 1], // a comment relative to the root
    // Fine: imports inside the repository, fixtures inside it, the bridge's own system paths.
    ['test/unit/a.test.ts', `import { x } from '${UP}${UP}src/errors.js';`, 0],
    ['test/unit/a.test.ts', `new URL('${UP}fixtures/assemblyline-fixtures/', import.meta.url)`, 0],
    ['bench/mapping.ts', `new URL('${UP}test/fixtures/x.json', import.meta.url)`, 0],
    ['src/config/schema.ts', `stateDir: '/var/lib/mass-al-bridge', file: '/etc/mass-al-bridge/bridge.ini'`, 0],
    ['src/x.ts', `const p = 'src/home/page.ts';`, 0],
  ];
  for (const [file, line, expected] of cases) {
    const found = outsidePaths(file, line, ROOT);
    assert.equal(found.length, expected, `${file}: ${line}\n${show(found)}`);
    if (expected > 0) assert.equal(found[0].line, 1);
  }
});

test('no file under src/, test/, bench/, scripts/, .ci/, docs/ or the top-level files refers to a path outside the repository', () => {
  const dirs = ['src', 'test', 'bench', 'scripts', '.ci', 'docs', 'config', 'examples', 'openapi'].filter((d) => existsSync(join(REPO_ROOT, d)));
  const files = textFiles(dirs);
  const top = ['README.md', 'Dockerfile', 'docker-compose.yml', 'package.json', 'eslint.config.js', 'tsconfig.json', 'tsconfig.build.json'];
  assert.ok(files.some((f) => f.file === 'test/helpers/mass-replay.ts'), 'the walk reaches the test helpers');
  assert.ok(files.some((f) => f.file === 'test/fixtures/mass-recorded/README.md'), 'the walk reaches the fixtures');
  for (const name of top) if (existsSync(join(REPO_ROOT, name))) files.push({ file: name, text: readFileSync(join(REPO_ROOT, name), 'utf8') });
  const findings = files.flatMap((f) => outsidePaths(f.file, f.text));
  assert.deepEqual(findings, [], show(findings));
});

test('disabledTests flags skipped, focused and todo tests in every spelling node:test accepts', () => {
  const flagged = [
    `test${'.'}skip('x', () => {});`,
    `it${'.'}only('x', () => {});`,
    `describe${'.'}todo('x');`,
    `  t${'.'}skip('no chromium');`,
    `test('x', { ${'skip'}: true }, () => {});`,
    `test('x', { timeout: 5, ${'only'}: true }, () => {});`,
    `test('x', { ${'todo'}: 'later' }, () => {});`,
  ];
  for (const line of flagged) assert.equal(disabledTests('test/unit/a.test.ts', line).length, 1, line);
  const fine = [`test('skips a safelisted tag', () => {});`, `const skipped = notes.filter((n) => n.skip);`, `opts.onlyOnce = true;`];
  for (const line of fine) assert.deepEqual(disabledTests('test/unit/a.test.ts', line), [], line);
});

test('no test under test/ is skipped, focused or left as todo', () => {
  const files = textFiles(['test']).filter((f) => /\.(ts|js|mjs)$/.test(f.file));
  assert.ok(files.length > 40, `found ${files.length} test sources`);
  const findings = files.flatMap((f) => disabledTests(f.file, f.text));
  assert.deepEqual(findings, [], show(findings));
});

test('npm test needs no browser: only test/browser/ drives one, and npm test leaves that folder out', () => {
  const users = textFiles(['src', 'test', 'bench', 'scripts'])
    .filter((f) => /from '(playwright|playwright-core|puppeteer)'/.test(f.text))
    .map((f) => f.file);
  assert.ok(users.length > 0 && users.every((f) => f.startsWith('test/browser/')), users.join(', '));
  const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  assert.match(scripts['test:unit'], /-not -path 'test\/browser\/\*'/);
  assert.match(scripts['test:e2e'], /test\/browser\/run\.ts/);
});
