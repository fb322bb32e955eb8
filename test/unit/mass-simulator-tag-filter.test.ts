import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isParsableTagFilter, matchesTagFilter } from '../../src/simulators/mass/tag-filter.js';

const tags = ['sample-type:filesample', 'mime:application/pdf', 'campaign:demo', 'True'];

test('an empty filter matches every sample, even one without tags', () => {
  assert.equal(matchesTagFilter('', []), true);
  assert.equal(matchesTagFilter('', tags), true);
});

test('a single operand is true exactly when the sample has that tag', () => {
  assert.equal(matchesTagFilter('sample-type:filesample', tags), true);
  assert.equal(matchesTagFilter('mime:application/pdf', tags), true);
  assert.equal(matchesTagFilter('sample-type:ipsample', tags), false);
});

test('not binds tighter than and, and tighter than or', () => {
  assert.equal(matchesTagFilter('not campaign:demo', tags), false);
  assert.equal(matchesTagFilter('not not campaign:demo', tags), true);
  assert.equal(matchesTagFilter('campaign:demo and not x', tags), true);
  assert.equal(matchesTagFilter('x or campaign:demo and sample-type:filesample', tags), true);
  assert.equal(matchesTagFilter('x and campaign:demo or sample-type:filesample', tags), true);
  assert.equal(matchesTagFilter('x and (campaign:demo or sample-type:filesample)', tags), false);
  assert.equal(matchesTagFilter('(x or campaign:demo) and sample-type:filesample', tags), true);
});

test('an expression that does not parse matches nothing', () => {
  for (const bad of ['(campaign:demo', '   ', '+x', '_x', '.x', ')']) {
    assert.equal(matchesTagFilter(bad, ['campaign:demo', '+x', '_x', '.x']), false, bad);
    assert.equal(isParsableTagFilter(bad), false, bad);
  }
  assert.equal(isParsableTagFilter('sample-type:filesample and not (a or b)'), true);
});

test('tags containing _, . or + cannot be named in a filter', () => {
  // the operand stops at the first such character, so a different (shorter) tag is looked up
  assert.equal(matchesTagFilter('al:has_underscore', ['al:has_underscore']), false);
  assert.equal(matchesTagFilter('tag.with.dots', ['tag.with.dots']), false);
  assert.equal(matchesTagFilter('c++', ['c++']), false);
});

test('upstream quirks: trailing garbage is ignored, True/False are tag look-ups, only two operands of a chain count', () => {
  // parseString without parseAll: only the leading expression counts
  assert.equal(matchesTagFilter('campaign:demo )', tags), true);
  assert.equal(matchesTagFilter('campaign:demo has_underscore', tags), true);
  // the operand parse action looks True/False up like any tag
  assert.equal(matchesTagFilter('True', tags), true);
  assert.equal(matchesTagFilter('True', ['campaign:demo']), false);
  assert.equal(matchesTagFilter('False', ['campaign:demo']), false);
  // _bool_and reads t[0][0] and t[0][2] only
  assert.equal(matchesTagFilter('campaign:demo and sample-type:filesample and missing', tags), true);
  assert.equal(matchesTagFilter('missing or other or campaign:demo', tags), false);
});
