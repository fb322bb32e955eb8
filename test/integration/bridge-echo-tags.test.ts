/**
 * Echo-back recognised by the tags on MASS (docs/design.md §8): the tags are trusted only when Assemblyline
 * confirms them. A sample whose tags name a submission that does not hold it, or a submission that is gone,
 * is analysed like any other file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reportsBySample, settled, startHarness } from '../helpers/bridge-harness.js';

test('tags naming a submission that does not hold the file, or one that is gone, do not stop its analysis', { timeout: 60_000 }, async (t) => {
  const h = await startHarness(t);
  h.bridge.start();
  const first = await h.seedFile('first.bin', 'an ordinary file analysed first\n');
  let state = await settled(h, 1);
  const sid = String((reportsBySample(state).get(first.url)?.[0].additional_metadata.assemblyline as Record<string, unknown>).sid);
  assert.match(sid, /^\w+$/);

  // Uploaded with the tags a bridge puts on an extracted file, but never extracted anywhere.
  const forged = await h.seedFile('forged.bin', 'a file that only claims to be extracted\n', { tags: ['al:extracted', `al:sid:${sid}`] });
  const orphan = await h.seedFile('orphan.bin', 'a file whose submission is gone\n', { tags: ['al:extracted', 'al:sid:NoSuchSubmission0000001'] });
  state = await settled(h, 3);

  const ingests = h.al.stats().ingestsBySha256;
  for (const sample of [forged, orphan]) {
    const reports = reportsBySample(state).get(sample.url) ?? [];
    assert.equal(reports.length, 1, `${sample.file_names?.[0]}: one report`);
    assert.equal(reports[0].error_message, null);
    const al = reports[0].additional_metadata.assemblyline as Record<string, unknown>;
    assert.notEqual(al.answered_from_parent_submission, true, 'not answered from the submission the tags named');
    assert.notEqual(al.sid, sid);
    assert.equal(ingests[sample.sha256sum ?? ''], 1, 'the file itself was ingested once');
  }
  const eventsOf = (url: string) => {
    const job = h.ledger.list({}).jobs.find((j) => j.sampleUrl === url)!;
    return h.ledger.events(job.id).map((e) => e.type);
  };
  // Recognised by its tags at first, then Assemblyline did not confirm it.
  assert.ok(eventsOf(forged.url).includes('echo-back'));
  assert.ok(eventsOf(forged.url).includes('echo-not-in-parent'));
  assert.ok(eventsOf(orphan.url).includes('echo-parent-gone'));
});
