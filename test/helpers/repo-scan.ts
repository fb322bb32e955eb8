/**
 * Scans the repository's own text files for things a fresh clone on another machine cannot have
 * (paths outside the checkout) and for tests that would not run (`.skip`, `.only`, `todo`).
 * Pure functions over text, plus one directory walk; used by test/unit/repository.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the repository root (two levels above this file). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/[\\/]$/, '');

/** One finding: file relative to the root, 1-based line, what is wrong, the offending text. */
export interface Finding {
  file: string;
  line: number;
  problem: string;
  text: string;
}

/**
 * Home and workspace folders of development machines and CI runners. A path under one of them
 * names somebody's machine, never something a clone carries. System paths the bridge uses on
 * purpose (`/etc/mass-al-bridge`, `/var/lib/mass-al-bridge`, `/usr/bin/...`, `/tmp`) are not here.
 */
const MACHINE_PREFIXES = ['work', 'home', 'Users', 'root', 'mnt', 'workspace', 'builds'].map((dir) => `/${dir}/`);

/** A quoted string that starts with one or more `../`: a path relative to the file that holds it. */
const QUOTED_RELATIVE = /(['"`])((?:\.\.\/)+[^'"`\s]*)\1/g;
/** The sibling folder of the development checkout, however many `../` lead to it, quoted or in a comment. */
const SIBLING_SHARED = /(?:^|[^\w.])((?:\.\.\/)+shared\/)/g;

/**
 * Paths in `text` (the content of `file`, relative to `root`) that point outside the repository:
 * absolute paths under a machine's home or workspace folder (and under `root`'s parent folder),
 * quoted `../` paths that resolve outside `root` from the file's folder, and any path into a
 * `shared` folder beside the checkout (quoted or not: comments cite such paths too).
 */
export function outsidePaths(file: string, text: string, root: string = REPO_ROOT): Finding[] {
  const found: Finding[] = [];
  const parent = dirname(root);
  const prefixes = [...MACHINE_PREFIXES, ...(parent === dirname(parent) ? [] : [`${parent}/`])];
  const lines = text.split('\n');
  lines.forEach((lineText, i) => {
    const at = (problem: string, what: string) => found.push({ file, line: i + 1, problem, text: what });
    for (const prefix of prefixes) {
      let from = lineText.indexOf(prefix);
      while (from !== -1) {
        // A prefix inside a longer path (a folder named like one, deeper down) is not an absolute path.
        const before = from === 0 ? '' : lineText[from - 1];
        if (before === '' || /[\s'"`(=:,[{]/.test(before)) at(`absolute path of a machine (${prefix})`, lineText.trim());
        from = lineText.indexOf(prefix, from + prefix.length);
      }
    }
    for (const m of lineText.matchAll(QUOTED_RELATIVE)) {
      const target = resolve(root, dirname(file), m[2]);
      const rel = relative(root, target);
      if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) at('relative path leads outside the repository', m[2]);
    }
    for (const m of lineText.matchAll(SIBLING_SHARED)) at('path to a folder beside the checkout', m[1]);
  });
  return found;
}

/**
 * Test registrations that do not run or make others not run: a call of the skip, only or todo
 * method of `test`, `it`, `describe`, `suite`, `context` or a test context `t`, and the skip, only
 * and todo options of node:test. A skipped check is a check that cannot fail.
 */
export function disabledTests(file: string, text: string): Finding[] {
  const found: Finding[] = [];
  const call = /\b(?:test|it|describe|suite|t|context)\.(skip|only|todo)\s*\(/g;
  const option = /[{,]\s*(skip|only|todo)\s*:/g;
  text.split('\n').forEach((lineText, i) => {
    for (const m of lineText.matchAll(call)) found.push({ file, line: i + 1, problem: `.${m[1]}() test`, text: lineText.trim() });
    for (const m of lineText.matchAll(option)) found.push({ file, line: i + 1, problem: `${m[1]} option on a test`, text: lineText.trim() });
  });
  return found;
}

/**
 * Text files under `dirs` (relative to `root`), as paths relative to `root`, sorted. Skips
 * `node_modules`, `dist` and files with a NUL byte in their first 8 KiB (binary fixtures).
 */
export function textFiles(dirs: string[], root: string = REPO_ROOT): Array<{ file: string; text: string }> {
  const out: Array<{ file: string; text: string }> = [];
  for (const dir of dirs) {
    const entries = readdirSync(join(root, dir), { recursive: true, withFileTypes: true });
    for (const e of entries) {
      if (!e.isFile()) continue;
      const abs = join(e.parentPath, e.name);
      const file = relative(root, abs).split(sep).join('/');
      if (/(^|\/)(node_modules|dist)\//.test(file)) continue;
      const bytes = readFileSync(abs);
      if (bytes.subarray(0, 8192).includes(0)) continue;
      out.push({ file, text: bytes.toString('utf8') });
    }
  }
  return out.sort((a, b) => a.file.localeCompare(b.file));
}
