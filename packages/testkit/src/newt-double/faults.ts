/**
 * A route the double answers: `"METHOD /resource"` (`"POST /command"`, `"GET /file"`,
 * `"PUT /file"`, `"POST /auth"`, `"GET /login"`…), `"/resource"` for every method, or `"*"`.
 * The resource is the first path segment after the base URL.
 */
import { HTTP_FAULT_KINDS, type HttpFault } from "../double-common.js";
import { type Armed, armCommon, type FaultRequest, faultMatches, sharedFaultLabel } from "../http-double.js";
export type NewtRoute = "*" | `/${string}` | `${"GET" | "PUT" | "POST" | "DELETE" | "PATCH" | "HEAD"} /${string}`;

/** Facts a fault's `match` predicate can look at (the same for both HTTP doubles). */
export type NewtFaultRequest = FaultRequest;

/**
 * What the double does to a request instead of (or on top of) answering it.
 *
 * - `status` `before` (default): answer `status` (500, 502, 503, 504, 429…) with a JSON
 *   error **without processing** the request — nothing runs, nothing is written. `after`:
 *   process it fully (the command runs), then answer the status: the ambiguous gateway.
 * - `reset` `before`: read the request, then destroy the connection without processing it.
 *   `after`: process it fully (the command runs, the file is written), then destroy the
 *   connection instead of answering — the "lost answer" case.
 * - `delay` `before`: wait `ms`, then process; if the client has gone in the meantime,
 *   nothing is processed (logged as `client-gone`). `after`: process, then wait before answering.
 * - `truncate`: process, then send the headers (with the full `Content-Length`) and only
 *   the first `bytes` of the body (default: half), then destroy the connection.
 *
 * With `rate` (and `times: Infinity`) a fault hits a seeded fraction of the requests:
 * `inject("/command", { kind: "status", status: 503, rate: 0.3, times: Infinity })`.
 */
export type NewtFault = HttpFault<{
  /** The body of a `status` fault's answer (default: a NEWT-style JSON error). */
  body?: string | undefined;
}>;

/** A fault as stored by the double, with its remaining uses. */
export type ArmedFault = Armed<NewtFault>;

const ROUTE = /^(?:\*|(?:(GET|PUT|POST|DELETE|PATCH|HEAD) )?\/[A-Za-z0-9_-]*)$/;

/** Checks a route key and a fault description; throws a TypeError saying what is wrong. */
export function armFault(route: string, fault: NewtFault): ArmedFault {
  if (!ROUTE.test(route)) {
    throw new TypeError(`newt-double: bad route ${JSON.stringify(route)}; expected "*", "/file" or "POST /command"`);
  }
  if (!HTTP_FAULT_KINDS.includes(fault.kind)) {
    throw new TypeError(`newt-double: unknown fault kind ${JSON.stringify((fault as { kind: unknown }).kind)}`);
  }
  return armCommon("newt-double", route, fault);
}

/** A short label for the request log (`"status 503"`, `"reset after"`, `"delay before 2000ms"`). */
export function faultLabel(fault: NewtFault): string {
  return sharedFaultLabel(fault);
}

export { faultMatches };
