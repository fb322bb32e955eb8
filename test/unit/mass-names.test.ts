/** File names sent to MASS: always acceptable to MASS's tag rule on extensions, unchanged when already fine. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { massSafeFileName } from '../../src/mapping/names.js';
import { fileExtension, isValidSampleTag, uploadedBaseName } from '../../src/simulators/mass/store.js';

test('download.php?id=7 becomes a name MASS stores; ordinary names are kept', () => {
  assert.deepEqual(massSafeFileName('download.php?id=7'), { name: 'download.php_id_7', renamed: true });
  assert.deepEqual(massSafeFileName('invoice.pdf'), { name: 'invoice.pdf', renamed: false });
  assert.deepEqual(massSafeFileName('no-extension'), { name: 'no-extension', renamed: false });
  assert.deepEqual(massSafeFileName('archive.tar.gz'), { name: 'archive.tar.gz', renamed: false });
  assert.deepEqual(massSafeFileName('report.p df'), { name: 'report.p_df', renamed: true });
  assert.deepEqual(massSafeFileName('x.é'), { name: 'x._', renamed: true });
  assert.deepEqual(massSafeFileName(''), { name: '', renamed: false });
});

test('the name sent is the base name MASS stores: paths and Windows paths are cut, an empty base name takes the fallback', () => {
  assert.deepEqual(massSafeFileName('zip/inner/file.php?id=9'), { name: 'file.php_id_9', renamed: true });
  assert.deepEqual(massSafeFileName('../../etc/passwd'), { name: 'passwd', renamed: true });
  assert.deepEqual(massSafeFileName('C:\\Users\\bob\\evil.exe'), { name: 'evil.exe', renamed: true });
  assert.deepEqual(massSafeFileName('archive\\sub\\x.exe'), { name: 'x.exe', renamed: true });
  assert.deepEqual(massSafeFileName('payload.<script>alert(1)</script>.js'), { name: 'script>.js', renamed: true });
  assert.deepEqual(massSafeFileName('dir/', 'a'.repeat(64)), { name: 'a'.repeat(64), renamed: true });
});

test('property: MASS stores exactly the name the bridge sends (its base name is itself), so the report names what MASS holds', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.array(fc.constantFrom('a', '/', '\\', '.', '?', 'C:', 'x')).map((a) => a.join(''))), (name) => {
      const safe = massSafeFileName(name, 'f'.repeat(64));
      assert.equal(uploadedBaseName(safe.name), safe.name, `${JSON.stringify(name)} → ${JSON.stringify(safe.name)}`);
      assert.ok(!safe.name.includes('\\'), 'no backslash is sent');
    }),
    { numRuns: 2000 },
  );
});

test('property: whatever the name, the extension tag MASS derives from the safe name passes MASS\'s tag rule', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.webUrl().map((u) => u.split('/').pop() ?? u)), (name) => {
      const safe = massSafeFileName(name);
      const ext = fileExtension(uploadedBaseName(safe.name));
      assert.ok(ext === '' || isValidSampleTag(`extension:${ext}`), `${JSON.stringify(name)} → ${JSON.stringify(safe.name)} gives extension:${ext}`);
      if (!safe.renamed) assert.equal(safe.name, name);
    }),
    { numRuns: 2000 },
  );
});
