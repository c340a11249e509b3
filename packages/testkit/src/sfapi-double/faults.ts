/**
 * Faults of the SFAPI double: the NEWT double's model (status without processing, reset
 * before/after, delay, truncate) plus 429 with `Retry-After` and slow tasks. Route keys
 * are checked against the routes the double serves, so a typo cannot arm a fault that
 * never fires.
 */
import { HTTP_FAULT_KINDS, type HttpFault } from "../double-common.js";
import {
  type Armed,
  armCommon,
  type FaultCommon,
  type FaultRequest,
  faultMatches,
  sharedFaultLabel,
} from "../http-double.js";

/** Route paths of the double (`/token` is the token endpoint; the rest live under the API base). */
export const SFAPI_ROUTES = [
  "/token",
  "/utilities/command",
  "/utilities/upload",
  "/utilities/download",
  "/utilities/ls",
  "/compute/jobs",
  "/tasks",
  "/status",
  "/account",
  "/meta",
] as const;

type Method = "GET" | "PUT" | "POST" | "DELETE";

/**
 * A route: `"METHOD /path"` (`"POST /utilities/command"`, `"GET /tasks"`, `"POST /token"`),
 * `"/path"` for every method, or `"*"` for every request.
 */
export type SfapiRoute = "*" | (typeof SFAPI_ROUTES)[number] | `${Method} ${(typeof SFAPI_ROUTES)[number]}`;

/** Facts a fault's `match` predicate can look at (the same for both HTTP doubles). */
export type SfapiFaultRequest = FaultRequest;

/**
 * What the double does to a request instead of (or on top of) answering it.
 *
 * - `status` `before` (default): answer `status` (429, 502, 503, 504…) **without
 *   processing** — nothing runs, nothing is written, no token is issued.
 *   `retryAfterSeconds` adds `Retry-After`. `after`: process (the command task is created
 *   and runs), then answer the status — the ambiguous gateway answer.
 * - `reset` `before`: read the request, then reset the connection, nothing processed;
 *   `after`: process it (the command task is created and runs), then reset — the lost answer.
 * - `delay` `before`: wait, then process unless the client has gone; `after`: process, then wait.
 * - `truncate`: process, send the full `Content-Length` but only `bytes` (default half), close.
 * - `slow-task` (only `POST /utilities/command`): the task created stays `new` `ms` longer
 *   before its process starts.
 *
 * With `rate` (and `times: Infinity`) a fault hits a seeded fraction of the requests.
 */
export type SfapiFault =
  | HttpFault<{
      /** Adds `Retry-After` to a `status` fault's answer. */
      retryAfterSeconds?: number | undefined;
    }>
  | (FaultCommon & { kind: "slow-task"; ms: number });

/** A fault as stored, with its remaining uses. */
export type ArmedFault = Armed<SfapiFault>;

const KINDS = [...HTTP_FAULT_KINDS, "slow-task"];

/** Checks a route key and a fault; throws a TypeError saying what is wrong. */
export function armFault(route: string, fault: SfapiFault): ArmedFault {
  const m = /^(?:(GET|PUT|POST|DELETE) )?(\/[a-z/]+)$/.exec(route);
  if (route !== "*" && !(m && (SFAPI_ROUTES as readonly string[]).includes(m[2] as string))) {
    throw new TypeError(
      `sfapi-double: bad route ${JSON.stringify(route)}; expected "*", a path of ${SFAPI_ROUTES.join(", ")}, or "METHOD path"`,
    );
  }
  if (!KINDS.includes(fault.kind)) {
    throw new TypeError(`sfapi-double: unknown fault kind ${JSON.stringify((fault as { kind: unknown }).kind)}`);
  }
  if (fault.kind === "slow-task" && route !== "POST /utilities/command" && route !== "/utilities/command") {
    throw new TypeError("sfapi-double: a slow-task fault belongs on POST /utilities/command");
  }
  return armCommon("sfapi-double", route, fault);
}

/** A short label for the request log (`"status 503"`, `"reset after"`, `"slow-task 500ms"`). */
export function faultLabel(fault: SfapiFault): string {
  return fault.kind === "slow-task" ? `slow-task ${fault.ms}ms` : sharedFaultLabel(fault);
}

export { faultMatches };
