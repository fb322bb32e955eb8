/**
 * A small INI reader with Python configparser semantics (the MASS client tutorial reads its
 * config with configparser): `key = value` or `key: value`, whole-line `#`/`;` comments,
 * indented continuation lines, values trimmed, no inline comments and no quote stripping
 * (so a secret may contain `;`, `#` or quotes). Unlike the `ini` package it keeps line
 * numbers, reports duplicates, and never turns dotted section names into nesting.
 */

export interface IniEntry {
  /** Section name as written. */
  section: string;
  /** Key as written (spaces inside kept, ends trimmed). */
  key: string;
  value: string;
  /** 1-based line of the key. */
  line: number;
}

export interface IniSyntaxProblem {
  line: number;
  message: string;
}

export interface IniDocument {
  entries: IniEntry[];
  /** Sections in order of appearance, as written (also empty ones). */
  sections: Array<{ name: string; line: number }>;
  problems: IniSyntaxProblem[];
}

/** Lower case with spaces, dashes and underscores removed: `mass api key` ≡ `MASS_API_KEY` ≡ `massapikey`. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[\s_-]+/g, '');
}

export function parseIni(text: string): IniDocument {
  const doc: IniDocument = { entries: [], sections: [], problems: [] };
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let section: string | undefined;
  let last: IniEntry | undefined;
  const seen = new Map<string, number>();

  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) {
      // Simpler than configparser: an empty line always ends a continued value; a comment line does not.
      if (trimmed === '') last = undefined;
      return;
    }
    if (/^\s/.test(raw) && last) {
      last.value = last.value === '' ? trimmed : `${last.value}\n${trimmed}`;
      return;
    }
    last = undefined;
    if (trimmed.startsWith('[')) {
      const m = /^\[([^\]]+)\]$/.exec(trimmed);
      if (!m || m[1].trim() === '') {
        doc.problems.push({ line, message: `malformed section header '${trimmed.slice(0, 60)}'` });
        section = undefined;
        return;
      }
      section = m[1].trim();
      const norm = normalizeName(section);
      const earlier = doc.sections.find((s) => normalizeName(s.name) === norm);
      if (earlier && earlier.name === section) {
        doc.problems.push({ line, message: `section [${section}] appears twice` });
      } else if (earlier) {
        // Section names are compared as normalizeName compares them: these two are one section.
        const differ = earlier.name.toLowerCase() === section.toLowerCase() ? 'only in case' : 'only in case, spaces, dashes or underscores';
        doc.problems.push({
          line,
          message: `section [${section}] and [${earlier.name}] (line ${earlier.line}) differ ${differ}, which section names ignore: they name the same section; merge them or rename one`,
        });
      }
      doc.sections.push({ name: section, line });
      return;
    }
    const eq = trimmed.indexOf('=');
    const colon = trimmed.indexOf(':');
    const cut = eq < 0 ? colon : colon < 0 ? eq : Math.min(eq, colon);
    if (cut <= 0) {
      // Never echo the line: it may be a secret pasted without its key.
      doc.problems.push({ line, message: cut === 0 ? 'line has a value but no key' : "line is neither a section, a comment nor 'key = value'" });
      return;
    }
    if (section === undefined) {
      doc.problems.push({ line, message: `key '${trimmed.slice(0, cut).trim()}' appears before any [section]` });
      return;
    }
    const key = trimmed.slice(0, cut).trim();
    const id = `${normalizeName(section)}\u0000${normalizeName(key)}`;
    const first = seen.get(id);
    if (first !== undefined) {
      doc.problems.push({ line, message: `[${section}] ${key} is set twice (first on line ${first})` });
      return;
    }
    seen.set(id, line);
    last = { section, key, value: trimmed.slice(cut + 1).trim(), line };
    doc.entries.push(last);
  });
  return doc;
}
