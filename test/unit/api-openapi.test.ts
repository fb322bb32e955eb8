import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { OPENAPI_PATH, generateOpenApiDocument, serializeOpenApi } from '../../src/api/openapi.js';

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];

function resolvePointer(doc: unknown, ref: string): unknown {
  assert.ok(ref.startsWith('#/'), `only local $refs are expected, got ${ref}`);
  let node: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function collectRefs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const item of node) collectRefs(item, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else collectRefs(v, out);
    }
  }
  return out;
}

test('the committed openapi/openapi.json is what the app generates (run `npm run openapi` after changing routes)', async () => {
  const committed = readFileSync(OPENAPI_PATH, 'utf8');
  const generated = serializeOpenApi(await generateOpenApiDocument());
  assert.equal(committed, generated, 'openapi/openapi.json is stale: run `npm run openapi` and commit the result');
});

test('the OpenAPI document is structurally valid OpenAPI 3', async () => {
  const doc = (await generateOpenApiDocument()) as {
    openapi: unknown;
    info: { title?: unknown; version?: unknown };
    paths: Record<string, Record<string, { responses?: Record<string, { description?: unknown }>; parameters?: Array<{ in: string; name: string; required?: boolean }> }>>;
    components?: { securitySchemes?: Record<string, unknown> };
  };
  assert.match(String(doc.openapi), /^3\.\d+\.\d+$/);
  assert.equal(typeof doc.info?.title, 'string');
  assert.equal(typeof doc.info?.version, 'string');
  assert.ok(doc.paths && typeof doc.paths === 'object');

  const expected = ['/health', '/ready', '/metrics', '/api/v1/status', '/api/v1/throughput', '/api/v1/jobs', '/api/v1/jobs/{id}', '/api/v1/jobs/{id}/retry', '/api/v1/jobs/{id}/abandon', '/api/v1/pause', '/api/v1/resume'];
  assert.deepEqual(Object.keys(doc.paths).sort(), expected.sort());

  let operations = 0;
  for (const [path, item] of Object.entries(doc.paths)) {
    assert.ok(path.startsWith('/'), path);
    for (const [method, op] of Object.entries(item)) {
      if (!METHODS.includes(method)) continue;
      operations++;
      const where = `${method.toUpperCase()} ${path}`;
      assert.ok(op.responses && Object.keys(op.responses).length > 0, `${where} has no responses`);
      for (const [status, response] of Object.entries(op.responses)) {
        assert.match(status, /^([1-5]\d\d|default)$/, where);
        assert.equal(typeof response.description, 'string', `${where} ${status} lacks a description`);
      }
      for (const name of [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1])) {
        const param = op.parameters?.find((p) => p.in === 'path' && p.name === name);
        assert.ok(param?.required, `${where} does not declare required path parameter ${name}`);
      }
      const security = (op as { security?: Array<Record<string, unknown>> }).security ?? [];
      for (const requirement of security) for (const scheme of Object.keys(requirement)) assert.ok(doc.components?.securitySchemes?.[scheme], `${where} uses undefined scheme ${scheme}`);
    }
  }
  assert.equal(operations, 11);

  const refs = collectRefs(doc);
  assert.ok(refs.length > 0, 'shared schemas are referenced');
  for (const ref of refs) assert.notEqual(resolvePointer(doc, ref), undefined, `unresolved $ref ${ref}`);
});

test('operator actions are documented with bearer auth and the error shape', async () => {
  const doc = (await generateOpenApiDocument()) as { paths: Record<string, Record<string, { security?: unknown; responses: Record<string, unknown> }>> };
  for (const path of ['/api/v1/pause', '/api/v1/resume', '/api/v1/jobs/{id}/retry', '/api/v1/jobs/{id}/abandon']) {
    const op = doc.paths[path].post;
    assert.deepEqual(op.security, [{ bearerAuth: [] }], path);
    for (const status of ['401', '403']) assert.ok(op.responses[status], `${path} documents ${status}`);
  }
});
