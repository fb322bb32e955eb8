import { crash, HtmlError } from './http-errors.js';

export interface Page<T> {
  items: T[];
  next: string | null;
  previous: string | null;
}

/** Python int() on the `page` argument: anything else is an unhandled ValueError (500). */
export function parsePageArgument(query: URLSearchParams): number {
  const raw = query.get('page');
  if (raw === null) return 1;
  if (!/^\s*[+-]?\d+\s*$/.test(raw)) throw crash('page is not an int');
  return Number.parseInt(raw.trim(), 10);
}

/**
 * PaginationFunctions.paginate + flask_mongoengine Pagination: page < 1 or an empty page other than 1
 * aborts with Flask's HTML 404. `next`/`previous` are built with url_for(endpoint, page=n), so they
 * carry only `page`: the filters are dropped.
 */
export function paginate<T>(items: T[], page: number, perPage: number, listUrl: string): Page<T> {
  if (page < 1) throw new HtmlError(404, 'page < 1');
  const pages = Math.ceil(items.length / perPage);
  const slice = items.slice((page - 1) * perPage, page * perPage);
  if (slice.length === 0 && page !== 1) throw new HtmlError(404, 'page out of range');
  return {
    items: slice,
    next: page < pages ? `${listUrl}?page=${page + 1}` : null,
    previous: page > 1 ? `${listUrl}?page=${page - 1}` : null,
  };
}

/**
 * The generic list schema (get_pagination_compatible_schema) declares next/previous as Int(): a URL
 * fails to serialize and marshmallow 2 leaves the key out, so only null values survive.
 */
export function genericListBody(page: Page<unknown>, results: unknown[]): Record<string, unknown> {
  const body: Record<string, unknown> = { results };
  if (page.next === null) body.next = null;
  if (page.previous === null) body.previous = null;
  return body;
}

/** sample/ and sample_relation/ build their reply by hand and keep the URLs. */
export function fullListBody(page: Page<unknown>, results: unknown[]): Record<string, unknown> {
  return { next: page.next, previous: page.previous, results };
}
