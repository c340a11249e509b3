/** Request handling of the NEWT double: routing, the request log, and injected faults. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { answerWithFault, sendReply } from "../http-double.js";
import { command } from "./api-command.js";
import { file } from "./api-file.js";
import { queue } from "./api-queue.js";
import { authStatus, knownMachine, liveSession, login } from "./auth.js";
import type { NewtRequestLogEntry } from "./double.js";
import { faultLabel, faultMatches, type NewtFaultRequest } from "./faults.js";
import { PathRejected } from "./files.js";
import { type DoubleState, errorReply, HttpError, json, type Reply, readBody, readCookie } from "./state.js";

export async function dispatch(
  st: DoubleState,
  entry: NewtRequestLogEntry,
  method: string,
  rest: string,
  query: Record<string, string>,
  form: Record<string, string>,
  body: Buffer,
  req: IncomingMessage,
  sessionId: string | undefined,
): Promise<Reply> {
  const segments = rest.split("/").slice(1);
  const resource = segments[0] ?? "";
  const tail = segments.slice(1).filter((s) => s !== "");
  switch (resource) {
    case "auth":
    case "login":
      if (method === "POST") return login(st, form);
      if (method === "GET") return authStatus(st, sessionId);
      if (method === "DELETE" && resource === "auth") {
        if (sessionId !== undefined) st.sessions.delete(sessionId);
        return authStatus(st, undefined);
      }
      return errorReply(501, "Not Implemented");
    case "logout":
      if (method !== "GET" && method !== "POST") return errorReply(501, "Not Implemented");
      if (sessionId !== undefined) st.sessions.delete(sessionId);
      return authStatus(st, undefined);
    case "status": {
      if (method !== "GET") return errorReply(501, "Not Implemented");
      const sys = tail[0];
      if (sys === undefined)
        return json(
          200,
          st.machines.map((m) => ({ system: m, status: st.machineStatus.get(m) })),
        );
      if (sys === "motd") return json(200, { motd: "NEWT double: no scheduled maintenance." });
      return json(200, { system: knownMachine(st, sys), status: st.machineStatus.get(sys) });
    }
    case "file":
    case "command":
    case "queue": {
      const session = liveSession(st, sessionId);
      if (!session) {
        return json(st.unauthenticatedStatus, {
          status: "ERROR",
          status_code: st.unauthenticatedStatus,
          error: "You must be logged in to access this.",
          output: JSON.stringify({ login_url: `${st.prefix}/auth/` }),
        });
      }
      if (resource === "command") return command(st, entry, method, tail[0], form, session.username);
      if (resource === "queue") return queue(st, method, tail, form, query, session.username);
      const machineSeg = segments[1];
      const rawPath = segments.slice(2).join("/");
      return file(st, method, machineSeg, rawPath, query, body, req.headers["content-type"]);
    }
    default:
      return errorReply(404, `Unknown resource: ${resource}`);
  }
}

function redact(form: Record<string, string>): Record<string, string> {
  const out = { ...form };
  if ("password" in out) out.password = "<redacted>";
  return out;
}

export async function handle(st: DoubleState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = (req.method ?? "GET").toUpperCase();
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  // The raw path is used on purpose: WHATWG URL parsing would resolve `..` before the
  // double could refuse it.
  const rawPath = q < 0 ? url : url.slice(0, q);
  const query = Object.fromEntries(new URLSearchParams(q < 0 ? "" : url.slice(q + 1)));
  const rest =
    rawPath === st.prefix ? "" : rawPath.startsWith(`${st.prefix}/`) ? rawPath.slice(st.prefix.length) : undefined;
  const resource = rest === undefined ? "" : (rest.split("/")[1] ?? "");
  let decodedPath = rest ?? rawPath;
  try {
    decodedPath = decodeURIComponent(decodedPath);
  } catch {
    // keep the raw form in the log
  }
  const sessionId = readCookie(req.headers.cookie);
  const session = liveSession(st, sessionId);
  const entry: NewtRequestLogEntry = {
    seq: ++st.seq,
    at: st.clock.now(),
    method,
    route: `${method} /${resource}`,
    path: decodedPath,
    query,
    form: {},
    bodyBytes: 0,
    hasCookie: sessionId !== undefined,
    session: sessionId === undefined ? "none" : session ? "valid" : "invalid",
    username: session?.username,
  };
  st.requestLog.push(entry);

  let body: Buffer;
  try {
    body = await readBody(req, st.maxBodyBytes);
  } catch (err) {
    if (err instanceof HttpError) sendReply(res, entry, errorReply(err.status, err.message));
    else entry.outcome = "client-gone";
    return;
  }
  entry.bodyBytes = body.length;
  const contentType = req.headers["content-type"] ?? "";
  const form = /application\/x-www-form-urlencoded/i.test(contentType)
    ? Object.fromEntries(new URLSearchParams(body.toString("utf8")))
    : {};
  entry.form = redact(form);

  if (rest === undefined) {
    sendReply(res, entry, errorReply(404, `Not under ${st.prefix}`));
    return;
  }

  const info: NewtFaultRequest = { method, route: entry.route, path: decodedPath, query, form: entry.form };
  const armed = st.faults.find((f) => faultMatches(f, info));
  if (armed) {
    armed.remaining--;
    entry.fault = faultLabel(armed.fault);
  }
  const fault = armed?.fault;
  await answerWithFault({
    req,
    res,
    entry,
    fault,
    statusReply: (status) => ({
      status,
      headers: { "content-type": "application/json" },
      body: Buffer.from(
        (fault?.kind === "status" ? fault.body : undefined) ??
          JSON.stringify({ status: "ERROR", status_code: status, error: "injected fault", output: "" }),
      ),
    }),
    process: async () => {
      try {
        return await dispatch(st, entry, method, rest, query, form, body, req, sessionId);
      } catch (err) {
        if (err instanceof HttpError || err instanceof PathRejected) return errorReply(err.status, err.message);
        return errorReply(500, `newt-double internal error: ${(err as Error).message}`);
      }
    },
  });
}
