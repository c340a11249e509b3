import { type Deadline, UsageError } from "@sremote/core";
import type { NewtApi } from "./api.js";
import { fail } from "./errors.js";
import { answerText } from "./http.js";

/** Splits an absolute remote path into segments; refuses relative paths and `.`/`..` segments. */
export function pathSegments(path: string, what: string): string[] {
  if (!path.startsWith("/")) throw new UsageError(`newt: ${what} needs an absolute path, got ${JSON.stringify(path)}`);
  const segments = path.split("/").filter((s) => s !== "");
  if (segments.some((s) => s === "." || s === "..")) {
    throw new UsageError(`newt: ${what}: path must not contain '.' or '..' segments: ${JSON.stringify(path)}`);
  }
  if (segments.length === 0) throw new UsageError(`newt: ${what}: "/" is not a file`);
  return segments;
}

/** `GET /file/…?view=read`; NEWT's vague failures are explained by asking the system. */
export async function download(api: NewtApi, path: string, dl: Deadline): Promise<Uint8Array> {
  const res = await api.request(
    {
      method: "GET",
      path: api.filePath(pathSegments(path, "getFile")),
      query: { view: "read" },
      idempotent: true,
      what: `download ${path}`,
      timeoutMs: api.opts.requestTimeoutMs,
    },
    dl,
  );
  if (res.status === 200) return res.body;
  if (res.status === 403 || res.status === 401) {
    throw fail("PERMISSION_DENIED", `cannot read ${path}: ${answerText(res.body) || `HTTP ${res.status}`}`, {
      details: { path, status: res.status },
    });
  }
  api.throwIfUnknownSystem(res);
  if (res.status === 404) {
    throw fail("FILE_NOT_FOUND", `no such file: ${path}`, { details: { path, status: res.status } });
  }
  // NEWT 2.0 and others answer 500 for a missing file: ask the system what is there.
  const kind = await api.probe(path, dl);
  const text = answerText(res.body);
  if (kind === "missing") throw fail("FILE_NOT_FOUND", `no such file: ${path}`, { details: { path } });
  if (kind === "unreadable") throw fail("PERMISSION_DENIED", `cannot read ${path}`, { details: { path } });
  throw fail(
    "REMOTE_IO",
    kind === "dir"
      ? `cannot download ${path}: it is a folder`
      : `cannot download ${path}: HTTP ${res.status}${text ? `: ${text}` : ""}`,
    { details: { path, status: res.status } },
  );
}

/** PUT of the bytes (the mode is NEWT's default); a missing parent becomes `FILE_NOT_FOUND`. */
export async function upload(api: NewtApi, path: string, data: Uint8Array, dl: Deadline): Promise<void> {
  const segments = pathSegments(path, "putFile");
  const res = await api.request(
    {
      method: "PUT",
      path: api.filePath(segments),
      body: data,
      idempotent: true,
      what: `upload ${path}`,
      timeoutMs: api.opts.requestTimeoutMs,
    },
    dl,
  );
  if (res.status === 200 || res.status === 201 || res.status === 204) return;
  const text = answerText(res.body);
  if (res.status === 401 || res.status === 403) {
    throw fail("PERMISSION_DENIED", `cannot write ${path}: ${text || `HTTP ${res.status}`}`, {
      details: { path, status: res.status },
    });
  }
  api.throwIfUnknownSystem(res);
  // The error text of a failed PUT is not specified: ask the system whether the folder exists.
  const parent = `/${segments.slice(0, -1).join("/")}`;
  const kind = await api.probe(parent, dl);
  if (kind === "missing") {
    throw fail("FILE_NOT_FOUND", `cannot write ${path}: folder ${parent} does not exist`, {
      details: { path, status: res.status },
    });
  }
  throw fail("REMOTE_IO", `cannot write ${path}: HTTP ${res.status}${text ? `: ${text}` : ""}`, {
    details: { path, status: res.status },
  });
}

/**
 * `DELETE /file/…`. Returns false when NEWT declined in a way that says nothing (404 for a
 * missing file or an unknown verb, 405, 501, 500…): the caller then deletes by command.
 */
export async function deleteByHttp(api: NewtApi, path: string, dl: Deadline): Promise<boolean> {
  const res = await api.request(
    {
      method: "DELETE",
      path: api.filePath(pathSegments(path, "deleteFile")),
      idempotent: true,
      what: `delete ${path}`,
      timeoutMs: api.opts.requestTimeoutMs,
    },
    dl,
  );
  if (res.status === 200 || res.status === 204) return true;
  if (res.status === 401 || res.status === 403) {
    throw fail("PERMISSION_DENIED", `cannot delete ${path}: ${answerText(res.body) || `HTTP ${res.status}`}`);
  }
  api.throwIfUnknownSystem(res);
  return false;
}
