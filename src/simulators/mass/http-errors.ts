/** Werkzeug-style HTML error pages: what MASS answers where Flask itself, not the API code, replies. */
const PAGES: Record<number, [string, string]> = {
  400: ['Bad Request', 'The browser (or proxy) sent a request that this server could not understand.'],
  404: ['Not Found', 'The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.'],
  405: ['Method Not Allowed', 'The method is not allowed for the requested URL.'],
  500: [
    'Internal Server Error',
    'The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.',
  ],
  502: ['Bad Gateway', 'The proxy server received an invalid response from an upstream server.'],
  503: ['Service Unavailable', 'The server is temporarily unable to service your request due to maintenance downtime or capacity problems. Please try again later.'],
  504: ['Gateway Timeout', 'The connection to an upstream server timed out.'],
};

export function htmlErrorPage(status: number): string {
  const [title, text] = PAGES[status] ?? ['Error', 'An error occurred.'];
  return `<!doctype html>\n<html lang=en>\n<title>${status} ${title}</title>\n<h1>${title}</h1>\n<p>${text}</p>\n`;
}

/** An answer with a JSON body (MASS API error objects, field-error maps). */
export class JsonError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`MASS JSON error ${status}`);
  }
}

/** An answer with Werkzeug's HTML page: 500 where the real server crashes, 404 past the last page, ... */
export class HtmlError extends Error {
  constructor(readonly status: number, reason: string) {
    super(reason);
  }
}

/** Shorthand for the many places where upstream raises an unhandled exception. */
export function crash(reason: string): HtmlError {
  return new HtmlError(500, reason);
}

export const FORBIDDEN = (): JsonError => new JsonError(403, { error: 'You do not have access to this resource.' });
export const NOT_FOUND = (key: string): JsonError => new JsonError(404, { error: `No object with key '${key}' found` });

/** JSON with sorted keys, as Flask's jsonify (JSON_SORT_KEYS) writes it. */
export function sortedJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}
