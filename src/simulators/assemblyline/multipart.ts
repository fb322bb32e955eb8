export interface MultipartPart {
  name: string;
  filename: string | null;
  contentType: string | null;
  data: Buffer;
}

export function boundaryOf(contentType: string): string | null {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : null;
}

/** Minimal RFC 7578 parser over a buffered body (the simulator buffers uploads anyway). */
export function parseMultipart(body: Buffer, boundary: string): MultipartPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: MultipartPart[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new Error('multipart boundary not found');
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString('latin1') === '--') break;
    if (body.subarray(pos, pos + 2).toString('latin1') === '\r\n') pos += 2;
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), pos);
    if (next < 0) throw new Error('unterminated multipart part');
    const raw = body.subarray(pos, next);
    const headerEnd = raw.indexOf('\r\n\r\n');
    if (headerEnd < 0) throw new Error('multipart part without headers');
    const headers = raw.subarray(0, headerEnd).toString('utf8').split('\r\n');
    let name = '';
    let filename: string | null = null;
    let contentType: string | null = null;
    for (const line of headers) {
      const idx = line.indexOf(':');
      if (idx < 0) continue;
      const key = line.slice(0, idx).trim().toLowerCase();
      const value = line.slice(idx + 1).trim();
      if (key === 'content-disposition') {
        const n = /\bname="([^"]*)"/i.exec(value);
        const f = /\bfilename="([^"]*)"/i.exec(value);
        if (n) name = n[1];
        if (f) filename = f[1];
      } else if (key === 'content-type') {
        contentType = value;
      }
    }
    // A view, not a copy: an upload's bytes stay where the body was read (the body is as large as the file anyway).
    parts.push({ name, filename, contentType, data: raw.subarray(headerEnd + 4) });
    pos = next + 2;
  }
  return parts;
}
