/** `/file/<machine>/<path>`: listings, downloads, uploads (PUT and multipart POST), deletes, over real folders. */
import { readFile, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { knownMachine } from "./auth.js";
import { assertRealInside, listPath, mapUrlPath } from "./files.js";
import { multipartBoundary, parseMultipart } from "./multipart.js";
import { type DoubleState, errnoCode, errorReply, json, type Reply } from "./state.js";

export async function file(
  st: DoubleState,
  method: string,
  machineSeg: string | undefined,
  rawPath: string,
  query: Record<string, string>,
  body: Buffer,
  contentType: string | undefined,
): Promise<Reply> {
  if (machineSeg === undefined || machineSeg === "") {
    if (method === "GET") return json(200, st.machines);
    return errorReply(501, "Not Implemented");
  }
  const machine = knownMachine(st, machineSeg);
  const root = st.roots.get(machine) as string;
  const path = mapUrlPath(root, rawPath);
  await assertRealInside(root, path);
  if (method === "GET") {
    if (query.view === "read") {
      let info: Awaited<ReturnType<typeof stat>>;
      try {
        info = await stat(path);
      } catch (err) {
        if (errnoCode(err) === "EACCES") return errorReply(403, `Permission denied: ${path}`);
        return errorReply(st.missingFileStatus, `No such file: ${path}`);
      }
      if (info.isDirectory()) return errorReply(st.missingFileStatus, `Is a directory: ${path}`);
      try {
        const data = await readFile(path);
        return { status: 200, headers: { "content-type": "application/octet-stream" }, body: data };
      } catch (err) {
        if (errnoCode(err) === "EACCES") return errorReply(403, `Permission denied: ${path}`);
        return errorReply(500, `Cannot read ${path}: ${errnoCode(err) ?? "error"}`);
      }
    }
    try {
      return json(200, await listPath(path, st.clock.now()));
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return errorReply(404, `No such file or directory: ${path}`);
      if (errnoCode(err) === "EACCES") return errorReply(403, `Permission denied: ${path}`);
      throw err;
    }
  }
  if (method === "PUT") return writeAt(st, path, body);
  if (method === "POST") {
    const boundary = multipartBoundary(contentType);
    if (!boundary) return errorReply(400, "POST /file needs a multipart/form-data body");
    let parts: ReturnType<typeof parseMultipart>;
    try {
      parts = parseMultipart(body, boundary);
    } catch (err) {
      return errorReply(400, `bad multipart body: ${(err as Error).message}`);
    }
    const files = parts.filter((p) => p.filename !== undefined);
    if (files.length === 0) return errorReply(400, "no file part in the upload");
    let last: Reply = errorReply(400, "no file part");
    for (const part of files) {
      const name = part.filename as string;
      if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
        return errorReply(400, `bad file name ${JSON.stringify(name)}`);
      }
      last = await writeAt(st, join(path, name), part.data);
      if (last.status !== 200) return last;
    }
    return last;
  }
  if (method === "DELETE") {
    if (st.deleteSupport === "unsupported") return errorReply(501, "Not Implemented");
    try {
      await unlink(path);
      return json(200, { status: "OK", output: "", error: "" });
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return errorReply(404, `No such file: ${path}`);
      if (errnoCode(err) === "EACCES") return errorReply(403, `Permission denied: ${path}`);
      return errorReply(500, `Cannot delete ${path}: ${errnoCode(err) ?? "error"}`);
    }
  }
  return errorReply(501, "Not Implemented");
}

export async function writeAt(_st: DoubleState, path: string, data: Buffer): Promise<Reply> {
  try {
    await writeFile(path, data);
    return json(200, { status: "OK", location: path });
  } catch (err) {
    const code = errnoCode(err);
    if (code === "EACCES") return errorReply(403, `Permission denied: ${path}`);
    if (code === "ENOENT") return errorReply(500, `No such file or directory: ${path}`);
    return errorReply(500, `Cannot write ${path}: ${code ?? "error"}`);
  }
}
