/**
 * The module structure the design promises, read from the import statements of src/: no two
 * modules import each other (directly or around a loop, type-only imports included); metric
 * definitions need no bridge module; the two upstream clients do not import each other and
 * share neutral modules (such as the multipart encoder) instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** Module (path relative to src/) → the src modules it imports or re-exports from, type-only ones included. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    const deps = [...text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+'(\.{1,2}\/[^']+)'/gms)].map((m) =>
      relative(SRC, resolve(dirname(file), m[1].replace(/\.js$/, '.ts'))),
    );
    graph.set(relative(SRC, file), deps);
  }
  return graph;
}

function cycles(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (node: string): void => {
    path.push(node);
    for (const dep of graph.get(node) ?? []) {
      const at = path.indexOf(dep);
      if (at >= 0) found.push([...path.slice(at), dep].join(' -> '));
      else if (!done.has(dep)) visit(dep);
    }
    path.pop();
    done.add(node);
  };
  for (const node of graph.keys()) if (!done.has(node)) visit(node);
  return found;
}

function reachable(graph: Map<string, string[]>, from: string): Set<string> {
  const seen = new Set<string>();
  const todo = [from];
  while (todo.length) {
    const node = todo.pop()!;
    for (const dep of graph.get(node) ?? []) if (!seen.has(dep)) todo.push((seen.add(dep), dep));
  }
  return seen;
}

const graph = importGraph();

test('the import graph of src/ is read (sanity: known edges are found)', () => {
  assert.ok(graph.size > 50, `only ${graph.size} modules found`);
  assert.ok(graph.get('mass/client.ts')?.includes('http/multipart.ts'));
  assert.ok(graph.get('assemblyline/multipart.ts')?.includes('http/multipart.ts'));
  assert.ok(graph.get('bridge/instrument.ts')?.includes('metrics.ts'), 'type-only imports count');
});

test('no modules import each other, directly or around a loop', () => {
  assert.deepEqual(cycles(graph), []);
});

test('metric definitions need no bridge module', () => {
  const deps = [...reachable(graph, 'metrics.ts')].filter((m) => m.startsWith('bridge/'));
  assert.deepEqual(deps, []);
});

test('the MASS and Assemblyline clients do not import each other', () => {
  for (const [from, to] of [['mass/', 'assemblyline/'], ['assemblyline/', 'mass/']]) {
    for (const [module, deps] of graph) {
      if (!module.startsWith(from)) continue;
      assert.deepEqual(deps.filter((d) => d.startsWith(to)), [], `${module} imports ${to}`);
    }
  }
});
