/**
 * File names the bridge sends to MASS. MASS turns the text after the last `.` of an uploaded file's base
 * name into the sample tag `extension:<ext>`, and a tag outside `^[\w:\-\_\/\+\.]+$` makes `submit_file`
 * answer 500 and store nothing (MASS.md §5.2). Pure: no I/O.
 */

/** Characters an extension may keep (ASCII only: the server's `\w` is wider, never narrower). */
const EXTENSION_OK = /^[A-Za-z0-9_:+-]*$/;

/**
 * A name MASS can store as it is sent. MASS keeps only the base name after the last `/` (Werkzeug also drops
 * Windows paths, and a backslash does not survive the multipart quoting), so the bridge sends that base name
 * itself, taken after the last `/` or `\`; an empty base name (`dir/`) becomes `fallback` (the caller passes
 * the sha256). Then the text after the last `.` has every character outside `[A-Za-z0-9_:+-]` replaced by
 * `_`; everything before it stays as it is. `renamed` is true when the name sent differs from `name` (the
 * caller keeps the original in the report). An empty name with no fallback stays empty.
 * Examples: `download.php?id=7` → `download.php_id_7`; `zip/inner/file.php?id=9` → `file.php_id_9`;
 * `C:\Users\bob\evil.exe` → `evil.exe`.
 */
export function massSafeFileName(name: string, fallback = ''): { name: string; renamed: boolean } {
  const original = typeof name === 'string' ? name : '';
  let base = original.slice(Math.max(original.lastIndexOf('/'), original.lastIndexOf('\\')) + 1);
  if (base === '') base = fallback;
  const dot = base.lastIndexOf('.');
  if (dot >= 0 && dot < base.length - 1) {
    const extension = base.slice(dot + 1);
    if (!EXTENSION_OK.test(extension)) base = base.slice(0, dot + 1) + extension.replace(/[^A-Za-z0-9_:+-]/g, '_');
  }
  return { name: base, renamed: base !== original };
}
