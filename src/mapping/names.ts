/**
 * File names the bridge sends to MASS. MASS turns the text after the last `.` of an uploaded file's base
 * name into the sample tag `extension:<ext>`, and a tag outside `^[\w:\-\_\/\+\.]+$` makes `submit_file`
 * answer 500 and store nothing (MASS.md §5.2). Pure: no I/O.
 */

/** Characters an extension may keep (ASCII only: the server's `\w` is wider, never narrower). */
const EXTENSION_OK = /^[A-Za-z0-9_:+-]*$/;

/**
 * A name MASS can store: the text after the last `.` has every character outside `[A-Za-z0-9_:+-]` replaced
 * by `_` (path separators too, so whatever base name the server takes, its extension is clean); everything
 * before it stays as it is. `renamed` is true when
 * the name changed (the caller keeps the original in the report). An empty name stays empty.
 * Example: `download.php?id=7` → `{ name: 'download.php_id_7', renamed: true }`.
 */
export function massSafeFileName(name: string): { name: string; renamed: boolean } {
  const original = typeof name === 'string' ? name : '';
  const dot = original.lastIndexOf('.');
  if (dot < 0 || dot === original.length - 1) return { name: original, renamed: false };
  const extension = original.slice(dot + 1);
  if (EXTENSION_OK.test(extension)) return { name: original, renamed: false };
  const safe = original.slice(0, dot + 1) + extension.replace(/[^A-Za-z0-9_:+-]/g, '_');
  return { name: safe, renamed: true };
}
