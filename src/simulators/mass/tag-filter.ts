/**
 * MASS `tag_filter_expression` evaluation, mirroring mass_flask_core/utils/tag_parser.py
 * (pyparsing infixNotation; operand `True | False | [a-zA-Z0-9:\-/]+`; `not` > `and` > `or`).
 *
 * Upstream quirks reproduced on purpose:
 * - '' matches everything; an expression whose start cannot be parsed matches nothing.
 * - parseString() is called without parseAll, so trailing text that does not parse is ignored ("a )" = "a").
 * - The operand parse action looks *every* operand up in the tag list, `True`/`False` included: they are
 *   tags named "True"/"False", not constants.
 * - The binary actions read only t[0][0] and t[0][2]: "a and b and c" evaluates as "a and b"
 *   (same for `or`).
 * - Operators are pyparsing Literals (no word boundary): "notepad" parses as "not epad".
 */
export function matchesTagFilter(expression: string, tags: readonly string[]): boolean {
  if (expression === '') return true;
  const parser = new FilterParser(expression, new Set(tags));
  const result = parser.parseOr(0);
  return result === null ? false : result.value;
}

/** True when the expression is accepted by the upstream grammar (at least a leading part of it). */
export function isParsableTagFilter(expression: string): boolean {
  if (expression === '') return true;
  return new FilterParser(expression, new Set()).parseOr(0) !== null;
}

interface Parsed {
  value: boolean;
  end: number;
}

const OPERAND = /[a-zA-Z0-9:\-/]+/y;
const IDENT_CHAR = /[A-Za-z0-9_$]/;

class FilterParser {
  constructor(
    private readonly text: string,
    private readonly tags: ReadonlySet<string>,
  ) {}

  private skip(pos: number): number {
    while (pos < this.text.length && ' \t\n\r'.includes(this.text[pos])) pos++;
    return pos;
  }

  private literal(pos: number, word: string): number | null {
    const at = this.skip(pos);
    return this.text.startsWith(word, at) ? at + word.length : null;
  }

  parseOr(pos: number): Parsed | null {
    return this.binary(pos, 'or', (p) => this.parseAnd(p), (a, b) => a || b);
  }

  private parseAnd(pos: number): Parsed | null {
    return this.binary(pos, 'and', (p) => this.parseNot(p), (a, b) => a && b);
  }

  private binary(pos: number, op: string, operand: (p: number) => Parsed | null, combine: (a: boolean, b: boolean) => boolean): Parsed | null {
    const first = operand(pos);
    if (first === null) return null;
    const values = [first.value];
    let end = first.end;
    for (;;) {
      const afterOp = this.literal(end, op);
      if (afterOp === null) break;
      const next = operand(afterOp);
      if (next === null) break;
      values.push(next.value);
      end = next.end;
    }
    // upstream _bool_and/_bool_or only look at the first two operands of the group
    return { value: values.length === 1 ? values[0] : combine(values[0], values[1]), end };
  }

  private parseNot(pos: number): Parsed | null {
    const afterNot = this.literal(pos, 'not');
    if (afterNot !== null) {
      const inner = this.parseNot(afterNot);
      if (inner !== null) return { value: !inner.value, end: inner.end };
    }
    return this.parseAtom(pos);
  }

  private parseAtom(pos: number): Parsed | null {
    const at = this.skip(pos);
    for (const keyword of ['True', 'False']) {
      if (this.text.startsWith(keyword, at) && !IDENT_CHAR.test(this.text[at + keyword.length] ?? '')) {
        return { value: this.tags.has(keyword), end: at + keyword.length };
      }
    }
    OPERAND.lastIndex = at;
    const m = OPERAND.exec(this.text);
    if (m) return { value: this.tags.has(m[0]), end: at + m[0].length };
    if (this.text[at] === '(') {
      const inner = this.parseOr(at + 1);
      if (inner === null) return null;
      const close = this.literal(inner.end, ')');
      if (close === null) return null;
      return { value: inner.value, end: close };
    }
    return null;
  }
}
