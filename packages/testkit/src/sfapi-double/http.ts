/** Request handling of the SFAPI double: routing, bearer checks, the request log, injected faults. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { answerWithFault, sendReply } from "../http-double.js";
import { PathRejected } from "../newt-double/files.js";
import { download, ls, upload } from "./api-files.js";
import { jobsRoute } from "./api-jobs.js";
import { postCommand, tasksRoute } from "./api-tasks.js";
import { faultLabel, faultMatches, type SfapiFault, type SfapiFaultRequest } from "./faults.js";
import { ApiError, detail, json, type Reply, readBody, type SfapiState, userId } from "./state.js";
import { checkBearer, tokenEndpoint } from "./token.js";
import type { SfapiRequestLogEntry } from "./types.js";

const SECRET_FIELD = /assertion|secret|token|password|private/i;

/** Form fields as logged: anything that could hold a credential is replaced by `"<redacted>"`. */
export function redactForm(form: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(form)) out[k] = SECRET_FIELD.test(k) ? "<redacted>" : v;
  return out;
}

/** The route key of an API path below the base (`/utilities/command/…` → `/utilities/command`). */
export function apiRoute(rest: string): string {
  const segments = rest.split("/").slice(1);
  const first = segments[0] ?? "";
  if ((first === "utilities" || first === "compute") && segments[1]) return `/${first}/${segments[1]}`;
  return `/${first}`;
}

function statusView(st: SfapiState, name: string): Record<string, unknown> {
  return {
    name,
    full_name: name.charAt(0).toUpperCase() + name.slice(1),
    description: `SFAPI double machine ${name}`,
    system_type: "compute",
    notes: [],
    status: st.machineStatus.get(name),
    updated_at: new Date(st.clock.now()).toISOString(),
  };
}

async function dispatch(
  st: SfapiState,
  entry: SfapiRequestLogEntry,
  req: IncomingMessage,
  rest: string,
  query: Record<string, string>,
  form: Record<string, string>,
  body: Buffer,
  fault: SfapiFault | undefined,
): Promise<Reply> {
  const method = entry.method;
  const segments = rest.split("/").slice(1);
  const resource = segments[0] ?? "";
  const tail = segments.slice(1).filter((s) => s !== "");
  if (resource === "status") {
    if (method !== "GET") return detail(405, "Method Not Allowed");
    const name = tail[0];
    if (name === undefined)
      return json(
        200,
        st.machines.map((m) => statusView(st, m)),
      );
    if (name === "outages" || name === "notes") return json(200, []);
    if (!st.machineStatus.has(name)) return detail(404, "Not Found");
    return json(200, statusView(st, name));
  }
  if (resource === "meta") {
    if (tail[0] === "changelog") return json(200, []);
    if (tail[0] === "config") return json(200, { name: "sfapi-double", version: "1.2" });
    return detail(404, "Not Found");
  }
  if (!["utilities", "tasks", "account", "compute"].includes(resource)) return detail(404, "Not Found");

  const bearer = checkBearer(st, req.headers);
  if (bearer.kind !== "valid") return detail(401, bearer.reason, { "www-authenticate": "Bearer" });
  const { caller } = bearer;
  if (resource === "account") {
    if (method !== "GET") return detail(405, "Method Not Allowed");
    if (tail.length > 0) return json(200, []);
    const [first = "", last = ""] = caller.username.match(/^(.)(.*)$/)?.slice(1) ?? [];
    return json(200, {
      uid: userId(st, caller.username),
      name: caller.username,
      firstname: first.toUpperCase(),
      lastname: last,
      middlename: "",
      workphone: "",
      otherPhones: [],
      email: `${caller.username}@example.org`,
    });
  }
  if (resource === "tasks") return tasksRoute(st, method, caller, tail);

  const kind = segments[1];
  const machineSeg = segments[2];
  const rawPath = `/${segments.slice(3).join("/")}`;
  const needsRed = resource === "compute" ? method === "POST" || method === "DELETE" : kind === "command";
  if (needsRed && caller.client.view.color !== "red") {
    return detail(
      403,
      `Client ${caller.client.view.clientId} has security level ${caller.client.view.color}; this endpoint needs a red client`,
    );
  }
  if (resource === "compute") {
    if (kind !== "jobs") return detail(404, "Not Found");
    const search = new URLSearchParams((req.url ?? "").split("?")[1] ?? "");
    return jobsRoute(st, entry, method, caller, tail.slice(1), search, body);
  }
  if (kind === "command" && method === "POST") return postCommand(st, entry, caller, machineSeg, form, fault);
  if (kind === "download" && method === "GET") return download(st, machineSeg, rawPath, query);
  if (kind === "upload" && method === "PUT") return upload(st, machineSeg, rawPath, body, req.headers["content-type"]);
  if (kind === "ls" && method === "GET") return ls(st, machineSeg, rawPath);
  return detail(
    kind === "command" || kind === "download" || kind === "upload" || kind === "ls" ? 405 : 404,
    "Not Found",
  );
}

function faultReply(fault: SfapiFault & { kind: "status" }, isToken: boolean): Reply {
  const headers: Record<string, string> = {};
  if (fault.retryAfterSeconds !== undefined) headers["retry-after"] = String(fault.retryAfterSeconds);
  if (isToken) {
    return json(
      fault.status,
      { error: "temporarily_unavailable", error_description: "sfapi-double: injected fault" },
      headers,
    );
  }
  return detail(fault.status, "sfapi-double: injected fault", headers);
}

export async function handle(st: SfapiState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = (req.method ?? "GET").toUpperCase();
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  // The raw path is used on purpose: URL parsing would resolve `..` before the double could refuse it.
  const rawPath = q < 0 ? url : url.slice(0, q);
  const query = Object.fromEntries(new URLSearchParams(q < 0 ? "" : url.slice(q + 1)));
  const isToken = rawPath === st.tokenPath;
  const rest = rawPath.startsWith(`${st.apiPrefix}/`) ? rawPath.slice(st.apiPrefix.length) : undefined;
  const routePath = isToken ? "/token" : rest === undefined ? rawPath : apiRoute(rest);
  let decodedPath = rawPath;
  try {
    decodedPath = decodeURIComponent(rawPath);
  } catch {
    // keep the raw form in the log
  }
  const bearer = checkBearer(st, req.headers);
  const entry: SfapiRequestLogEntry = {
    seq: ++st.seq,
    at: st.clock.now(),
    method,
    route: `${method} ${routePath}`,
    path: decodedPath,
    query,
    form: {},
    bodyBytes: 0,
    hasAuthorization: req.headers.authorization !== undefined,
    auth: bearer.kind,
    clientId: bearer.kind === "valid" ? bearer.caller.client.view.clientId : bearer.clientId,
    username: bearer.kind === "valid" ? bearer.caller.username : undefined,
  };
  st.requestLog.push(entry);

  let body: Buffer;
  try {
    body = await readBody(req, st.maxBodyBytes);
  } catch (err) {
    if (err instanceof ApiError) sendReply(res, entry, detail(err.status, err.message));
    else entry.outcome = "client-gone";
    return;
  }
  entry.bodyBytes = body.length;
  const contentType = req.headers["content-type"] ?? "";
  const form = /^application\/x-www-form-urlencoded\b/i.test(contentType)
    ? Object.fromEntries(new URLSearchParams(body.toString("utf8")))
    : {};
  entry.form = redactForm(form);
  if (!isToken && rest === undefined) {
    sendReply(res, entry, detail(404, "Not Found"));
    return;
  }

  const info: SfapiFaultRequest = { method, route: entry.route, path: decodedPath, query, form: entry.form };
  const armed = st.faults.find((f) => faultMatches(f, info));
  const fault = armed?.fault;
  if (armed) {
    armed.remaining--;
    entry.fault = faultLabel(armed.fault);
  }
  await answerWithFault({
    req,
    res,
    entry,
    fault,
    statusReply: (status) =>
      faultReply({ kind: "status", status, ...(fault?.kind === "status" ? fault : {}) }, isToken),
    process: async () => {
      try {
        return isToken
          ? tokenEndpoint(st, entry, method, contentType, form)
          : await dispatch(st, entry, req, rest as string, query, form, body, fault);
      } catch (err) {
        if (err instanceof ApiError || err instanceof PathRejected) return detail(err.status, err.message);
        return detail(500, `sfapi-double internal error: ${(err as Error).message}`);
      }
    },
  });
}
