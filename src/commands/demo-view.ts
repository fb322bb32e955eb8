/**
 * What the demo prints, fitted to a terminal width: the progress line (one line, never wrapped,
 * so a redraw with `\r` never leaves a stacked copy behind) and the summary table (notes wrapped
 * on word boundaries). Pure: no I/O, no clock.
 */

/** Job counts the progress line shows. */
export interface DemoProgress {
  reported: number;
  total: number;
  done: number;
  failed: number;
  held: number;
  inFlight: number;
  waiting: number;
}

/** One row of the summary table. */
export interface DemoRow {
  sample: string;
  outcome: string;
  score: string;
  related: string;
  notes: string[];
}

/** Width used when the output is not a terminal (a log file, a pipe): no line is cut or wrapped. */
export const PLAIN_WIDTH = 10_000;

/** Cuts `text` to at most `width` characters, marking a cut with '…'. */
export function fit(text: string, width: number): string {
  if (width <= 0) return '';
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

/** Splits `text` into lines of at most `width` characters, at spaces where it can. */
export function wrap(text: string, width: number): string[] {
  const w = Math.max(1, width);
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    let rest = word;
    while (rest.length > w) {
      // A word longer than a line: break it hard.
      if (line) lines.push(line);
      lines.push(rest.slice(0, w));
      rest = rest.slice(w);
      line = '';
    }
    if (!line) line = rest;
    else if (line.length + 1 + rest.length <= w) line += ` ${rest}`;
    else {
      lines.push(line);
      line = rest;
    }
  }
  if (line) lines.push(line);
  return lines;
}

/**
 * The progress line in at most `width - 1` characters (the last column is left free: some
 * terminals wrap when it is written). Details are dropped from the right, the bar shrinks last.
 */
export function progressLine(p: DemoProgress, width: number): string {
  const max = Math.max(10, width - 1);
  const details = [
    `${p.reported}/${p.total} reported`,
    `done ${p.done}`,
    `error-reported ${p.failed}`,
    `in flight ${p.inFlight}`,
    `waiting on Assemblyline ${p.waiting}`,
    ...(p.held ? [`held ${p.held}`] : []),
  ];
  for (const barWidth of [24, 12]) {
    const filled = p.total ? Math.round((p.reported / p.total) * barWidth) : 0;
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]`;
    for (let n = details.length; n >= 1; n--) {
      const line = `${bar} ${details.slice(0, n).join('  ')}`;
      if (line.length <= max) return line;
    }
  }
  return fit(details[0], max);
}

const pad = (s: string, n: number) => fit(s, n).padEnd(n);

/**
 * The summary table in `width` columns. Notes wrap within the note column; when that column would
 * be narrower than 30 characters, notes go on lines of their own below their row, indented.
 */
export function renderSummary(rows: DemoRow[], width: number): string[] {
  const fixed = [8, 6, 8];
  const longest = Math.max('sample'.length, ...rows.map((r) => r.sample.length));
  const sampleWidth = Math.max(10, Math.min(44, longest, width - fixed.reduce((a, b) => a + b + 1, 0) - 1));
  const lead = sampleWidth + fixed.reduce((a, b) => a + b + 1, 0) + 1;
  const noteWidth = width - lead - 1;
  const inline = noteWidth >= 30;
  const head = (notes: string) => `${pad('sample', sampleWidth)} ${pad('outcome', 8)} ${pad('score', 6)} ${pad('related', 8)} ${notes}`.trimEnd();
  const out = [head(inline ? 'note' : '')];
  for (const r of rows) {
    const cells = `${pad(r.sample, sampleWidth)} ${pad(r.outcome, 8)} ${pad(r.score, 6)} ${pad(r.related, 8)}`;
    const note = r.notes.join('; ');
    if (inline) {
      const lines = note ? wrap(note, noteWidth) : [''];
      out.push(`${cells} ${lines[0]}`.trimEnd());
      for (const l of lines.slice(1)) out.push(`${' '.repeat(lead)}${l}`);
    } else {
      out.push(cells.trimEnd());
      for (const l of note ? wrap(note, width - 5) : []) out.push(`    ${l}`);
    }
  }
  const divider = '-'.repeat(Math.min(width - 1, Math.max(...out.map((l) => l.length))));
  return [out[0], divider, ...out.slice(1)];
}
