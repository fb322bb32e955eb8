import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { crashPointFromSpec, crashPointOfMassAnswer, midUploadTap } from '../../src/bridge/crash-point.js';

test('MASSAL_TEST_CRASH_AT: unset arms nothing; <point>:N kills at the N-th time that point is reached only', () => {
  assert.equal(crashPointFromSpec(undefined, () => assert.fail('no kill')), undefined);
  assert.equal(crashPointFromSpec('', () => assert.fail('no kill')), undefined);
  const killed: string[] = [];
  const hook = crashPointFromSpec('after-claim:3', (name) => killed.push(name))!;
  hook('after-claim');
  hook('after-report-answer');
  hook('after-claim');
  assert.deepEqual(killed, []);
  hook('after-claim');
  assert.deepEqual(killed, ['after-claim']);
  const killedFirst: string[] = [];
  const first = crashPointFromSpec('after-queue-pop', (name) => killedFirst.push(name))!;
  first('after-queue-pop');
  assert.deepEqual(killedFirst, ['after-queue-pop']);
});

test('MASSAL_TEST_CRASH_AT: an unknown point or a bad count is refused with the known points', () => {
  assert.throws(() => crashPointFromSpec('after-lunch', () => undefined), /unknown crash point "after-lunch".*after-claim/);
  assert.throws(() => crashPointFromSpec('after-claim:0', () => undefined), /not a count/);
  assert.throws(() => crashPointFromSpec('after-claim:x', () => undefined), /not a count/);
});

test('crash points of MASS answers: the creation of a related sample, a relation or a report; nothing else', () => {
  assert.equal(crashPointOfMassAnswer('POST', '/api/sample/submit_file/'), 'after-related-sample-created');
  assert.equal(crashPointOfMassAnswer('POST', '/api/sample/submit_ip/'), 'after-related-sample-created');
  assert.equal(crashPointOfMassAnswer('POST', '/api/sample/submit_uri/'), 'after-related-sample-created');
  assert.equal(crashPointOfMassAnswer('POST', '/api/sample_relation/submit_dropped_by/'), 'after-relation-created');
  assert.equal(crashPointOfMassAnswer('POST', '/api/scheduled_analysis/6b0d/submit_report/'), 'after-report-created');
  assert.equal(crashPointOfMassAnswer('GET', '/api/sample/6b0d/download/'), undefined);
  assert.equal(crashPointOfMassAnswer('GET', '/api/sample/6b0d/relation_graph/'), undefined);
  assert.equal(crashPointOfMassAnswer('POST', '/api/analysis_system_instance/'), undefined);
});

test('mid-upload tap: the bytes pass unchanged; reached once, when more is asked after afterBytes went out', async () => {
  const chunks = Array.from({ length: 5 }, (_, i) => Buffer.alloc(10, i));
  const reachedAt: number[] = [];
  let out = 0;
  const tap = midUploadTap(Readable.from(chunks), () => reachedAt.push(out), 20);
  const got: Buffer[] = [];
  for await (const c of tap as AsyncIterable<Buffer>) {
    got.push(c);
    out += c.length;
  }
  assert.deepEqual(Buffer.concat(got), Buffer.concat(chunks));
  // Reached once; by then the reader had taken all but at most the chunk in flight of the first 20 bytes.
  assert.equal(reachedAt.length, 1);
  assert.ok(reachedAt[0] >= 10 && reachedAt[0] <= 20, `reached after ${reachedAt[0]} bytes were read`);

  const small: number[] = [];
  for await (const c of midUploadTap(Readable.from([Buffer.alloc(5)]), () => small.push(1), 20) as AsyncIterable<Buffer>) void c;
  assert.deepEqual(small, [], 'a file smaller than afterBytes never reaches the point');
});

test('mid-upload tap: destroying it (an upload cut off) destroys the source', async () => {
  const source = new PassThrough();
  source.write(Buffer.alloc(4));
  source.write(Buffer.alloc(4));
  const tap = midUploadTap(source, () => undefined, 1);
  await new Promise<void>((resolve) => tap.once('data', () => resolve()));
  tap.destroy();
  await new Promise<void>((resolve) => (source.destroyed ? resolve() : source.once('close', () => resolve())));
  assert.equal(source.destroyed, true);
});
