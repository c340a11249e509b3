/** One part of a `multipart/form-data` body. */
export interface FormPart {
  /** The `name` of the Content-Disposition header. */
  name: string;
  /** The `filename`, when the part is a file. */
  filename?: string | undefined;
  /** The part's bytes. */
  data: Buffer;
}

/** Reads the boundary out of a `multipart/form-data; boundary=…` content type, else undefined. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^multipart\/form-data\b/i.test(contentType)) return undefined;
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m?.[1] ?? m?.[2];
}

function dispositionParam(header: string, key: string): string | undefined {
  const m =
    new RegExp(`;\\s*${key}="((?:[^"\\\\]|\\\\.)*)"`, "i").exec(header) ??
    new RegExp(`;\\s*${key}=([^;\\s]+)`, "i").exec(header);
  return m?.[1]?.replace(/\\(.)/g, "$1");
}

/**
 * Parses a `multipart/form-data` body (RFC 7578), binary-safe.
 *
 * @throws Error for a body that does not follow the format.
 */
export function parseMultipart(body: Buffer, boundary: string): FormPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: FormPart[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new Error("multipart body has no boundary");
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === "--") return parts;
    if (body.subarray(pos, pos + 2).toString() !== "\r\n") throw new Error("malformed multipart delimiter line");
    pos += 2;
    const headerEnd = body.indexOf("\r\n\r\n", pos);
    if (headerEnd < 0) throw new Error("multipart part without header end");
    const headers = body.subarray(pos, headerEnd).toString("utf8").split("\r\n");
    const next = body.indexOf(Buffer.concat([Buffer.from("\r\n"), delimiter]), headerEnd + 4);
    if (next < 0) throw new Error("multipart part without closing boundary");
    const disposition = headers.find((h) => /^content-disposition:/i.test(h)) ?? "";
    const name = dispositionParam(disposition, "name");
    if (name === undefined) throw new Error("multipart part without a name");
    parts.push({ name, filename: dispositionParam(disposition, "filename"), data: body.subarray(headerEnd + 4, next) });
    pos = next + 2;
  }
}
