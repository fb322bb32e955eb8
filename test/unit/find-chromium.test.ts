/** How `npm run test:e2e` finds Chromium, and that it fails loudly without one. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_NAMES, findChromium } from '../browser/chromium.js';

/** A temp folder with `bin1/` and `bin2/`; `exe(dir, name)` puts an executable script there, `plain` a non-executable file. */
function sandbox(t: TestContext) {
  const root = mkdtempSync(join(tmpdir(), 'massal-chromium-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const bin1 = join(root, 'bin1');
  const bin2 = join(root, 'bin2');
  mkdirSync(bin1);
  mkdirSync(bin2);
  const write = (dir: string, name: string, mode: number) => {
    const p = join(dir, name);
    writeFileSync(p, '#!/bin/sh\nexit 0\n');
    chmodSync(p, mode);
    return p;
  };
  return {
    root, bin1, bin2,
    exe: (dir: string, name: string) => write(dir, name, 0o755),
    plain: (dir: string, name: string) => write(dir, name, 0o644),
    PATH: [bin1, bin2].join(delimiter),
  };
}

test('CHROMIUM_PATH wins over everything on PATH', (t) => {
  const s = sandbox(t);
  s.exe(s.bin1, 'chromium');
  const mine = s.exe(s.root, 'my-chrome');
  assert.deepEqual(findChromium({ env: { PATH: s.PATH, CHROMIUM_PATH: mine }, fallbacks: [] }), { path: mine, source: 'CHROMIUM_PATH' });
});

test('a CHROMIUM_PATH that is not an executable file is an error, not a silent fallback', (t) => {
  const s = sandbox(t);
  s.exe(s.bin1, 'chromium');
  const notExe = s.plain(s.root, 'chrome.txt');
  for (const bad of [notExe, join(s.root, 'missing'), s.bin1]) {
    const r = findChromium({ env: { PATH: s.PATH, CHROMIUM_PATH: bad }, fallbacks: [] });
    assert.equal(r.path, null, bad);
    if (r.path === null) {
      assert.match(r.message, new RegExp(`CHROMIUM_PATH is ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, which is not an executable file`));
      assert.match(r.message, /apt-get install chromium/);
    }
  }
});

test('on PATH: the usual names in order of preference, each looked for in every PATH folder', (t) => {
  const s = sandbox(t);
  assert.deepEqual(CHROMIUM_NAMES, ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']);
  const stable = s.exe(s.bin1, 'google-chrome-stable');
  assert.deepEqual(findChromium({ env: { PATH: s.PATH }, fallbacks: [] }), { path: stable, source: 'google-chrome-stable on PATH' });
  const browser = s.exe(s.bin2, 'chromium-browser');
  assert.equal(findChromium({ env: { PATH: s.PATH }, fallbacks: [] }).path, browser, 'chromium-browser before google-chrome-stable, whatever the folder');
  s.plain(s.bin1, 'chromium');
  assert.equal(findChromium({ env: { PATH: s.PATH }, fallbacks: [] }).path, browser, 'a chromium without the x bit is passed over');
  const first = s.exe(s.bin2, 'chromium');
  assert.equal(findChromium({ env: { PATH: s.PATH }, fallbacks: [] }).path, first);
  assert.equal(findChromium({ env: { PATH: ['', s.bin2].join(delimiter) }, fallbacks: [] }).path, first, 'empty PATH entries are ignored');
});

test('the fixed places are tried after PATH', (t) => {
  const s = sandbox(t);
  const debian = s.exe(s.root, 'usr-bin-chromium');
  const missing = join(s.root, 'nothing-here');
  assert.deepEqual(findChromium({ env: { PATH: s.PATH }, fallbacks: [missing, debian] }), { path: debian, source: debian });
  const onPath = s.exe(s.bin2, 'google-chrome');
  assert.equal(findChromium({ env: { PATH: s.PATH }, fallbacks: [debian] }).path, onPath);
});

test('nothing found: the message says what was looked for and what to install on each system', (t) => {
  const s = sandbox(t);
  const fallback = join(s.root, 'usr-bin-chromium');
  const r = findChromium({ env: { PATH: s.PATH }, fallbacks: [fallback] });
  assert.equal(r.path, null);
  if (r.path === null) {
    assert.match(r.message, /No Chromium found for the browser tests/);
    for (const name of CHROMIUM_NAMES) assert.ok(r.message.includes(name), name);
    assert.ok(r.message.includes(fallback));
    for (const hint of [/Debian: +sudo apt-get install chromium/, /Ubuntu: +sudo snap install chromium/, /Fedora: +sudo dnf install chromium/, /macOS: +brew install --cask chromium/, /CHROMIUM_PATH=/]) {
      assert.match(r.message, hint);
    }
  }
});

test('npm run test:e2e fails with that message, running no test, when its Chromium is not there', (t) => {
  const s = sandbox(t);
  const runner = fileURLToPath(new URL('../browser/run.ts', import.meta.url));
  const missing = join(s.root, 'no-chrome');
  const r = spawnSync(process.execPath, ['--import', 'tsx', runner], {
    env: { ...process.env, CHROMIUM_PATH: missing },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /npm run test:e2e: CHROMIUM_PATH is .*no-chrome, which is not an executable file/);
  assert.match(r.stderr, /apt-get install chromium/);
  assert.doesNotMatch(r.stdout, /# tests|^ok /m, 'no browser test ran');
});
