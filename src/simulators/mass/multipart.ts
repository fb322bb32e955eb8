/** A multipart/form-data part as Werkzeug sees it: with a filename it is a file, without one a form field. */
export interface MultipartPart {
  name: string;
  filename: string | undefined;
  /** Full Content-Type header value of the part, if any. */
  contentType: string | undefined;
  body: Buffer;
}

export class MultipartError extends Error {}

/** Extracts the boundary from a `multipart/form-data; boundary=...` header value, or undefined. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/form-data\b/i.test(contentType.trim())) return undefined;
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** Parses a whole multipart body (already size-limited by the HTTP layer). */
export function parseMultipart(body: Buffer, boundary: string): MultipartPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: MultipartPart[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new MultipartError('no boundary');
  for (;;) {
    pos += delimiter.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break; // closing delimiter
    // skip transport padding and the CRLF after the delimiter
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;
    if (body[pos] === 0x0d) pos++;
    if (body[pos] === 0x0a) pos++;
    let headerEnd = body.indexOf('\r\n\r\n', pos);
    let bodyStart = headerEnd + 4;
    const lfOnly = body.indexOf('\n\n', pos);
    if (headerEnd < 0 || (lfOnly >= 0 && lfOnly < headerEnd)) {
      headerEnd = lfOnly;
      bodyStart = lfOnly + 2;
    }
    if (headerEnd < 0) throw new MultipartError('unterminated part headers');
    const headers = parseHeaders(body.subarray(pos, headerEnd).toString('utf8'));
    let next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), bodyStart);
    let bodyEnd = next;
    if (next < 0) {
      next = body.indexOf(Buffer.concat([Buffer.from('\n'), delimiter]), bodyStart);
      bodyEnd = next;
      if (next < 0) throw new MultipartError('unterminated part');
      next += 1;
    } else {
      next += 2;
    }
    const disposition = headers.get('content-disposition');
    if (disposition) {
      const params = dispositionParams(disposition);
      const name = params.get('name');
      if (name !== undefined) {
        parts.push({ name, filename: params.get('filename'), contentType: headers.get('content-type'), body: body.subarray(bodyStart, bodyEnd) });
      }
    }
    pos = next;
  }
  return parts;
}

function parseHeaders(text: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

function dispositionParams(value: string): Map<string, string> {
  const params = new Map<string, string>();
  const re = /;\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(value)) !== null) {
    const key = m[1].toLowerCase();
    let v = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '').trim();
    if (key === 'filename*') {
      const ext = /^([^']*)'[^']*'(.*)$/.exec(v);
      if (ext) v = decodeURIComponent(ext[2]);
      params.set('filename', v);
      continue;
    }
    if (!params.has(key)) params.set(key, v);
  }
  return params;
}

/** The media type of a Content-Type value without parameters, lower-cased (Werkzeug `mimetype`). */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}
