/**
 * What the HTTP test doubles (newt-double, sfapi-double) share: reading a bounded request
 * body, errno codes, fault arming and matching (with seeded rates), and the skeleton that
 * answers a request with a fault applied.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { seededRandom } from "./hostile.js";

/** Reads a request body of at most `limit` bytes; a larger one rejects with `tooLarge(message)`. */
export function readBody(req: IncomingMessage, limit: number, tooLarge: (message: string) => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(tooLarge(`request body larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** The `code` of a Node system error (`ENOENT`, `EACCES`…), if any. */
export function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Facts about a request that a fault's `match` predicate can look at. */
export interface FaultRequest {
  method: string;
  /** Route key, e.g. `"GET /file"`. */
  route: string;
  /** Percent-decoded path after the API base. */
  path: string;
  query: Readonly<Record<string, string>>;
  /** Form fields (secrets redacted). */
  form: Readonly<Record<string, string>>;
}

/** The fields every injected fault has. */
export interface FaultCommon<R extends FaultRequest = FaultRequest> {
  /** How many matching requests this fault hits before it is used up (default 1; `Infinity` allowed). */
  times?: number | undefined;
  /** Only requests this returns true for. */
  match?: ((request: R) => boolean) | undefined;
  /**
   * Hit only this fraction of the matching requests, in (0, 1] (default 1: every one),
   * drawn from a generator seeded with {@link seed}: the same requests in the same order
   * meet the same faults in every run. `{ rate: 0.3, times: Infinity }` is a flaky gateway.
   */
  rate?: number | undefined;
  /** Seed of the {@link rate} draws (default 1). */
  seed?: number | undefined;
}

/** A fault waiting for requests: its route key, the fault, and the hits left. */
export interface Armed<F> {
  route: string;
  fault: F;
  remaining: number;
  /** Draws in [0, 1) for `rate` (seeded). */
  random: () => number;
}

/**
 * Checks what every fault kind shares and arms it. `prefix` names the double in messages.
 * @throws TypeError for a bad `times`, `status` or `ms`.
 */
export function armCommon<F extends FaultCommon & { kind: string; status?: number; ms?: number }>(
  prefix: string,
  route: string,
  fault: F,
): Armed<F> {
  const times = fault.times ?? 1;
  if (!(times >= 1)) throw new TypeError(`${prefix}: fault.times must be >= 1, got ${times}`);
  if (fault.kind === "status") {
    const s = fault.status;
    if (!(Number.isInteger(s) && (s as number) >= 100 && (s as number) <= 599)) {
      throw new TypeError(`${prefix}: fault.status must be an HTTP status, got ${s}`);
    }
  }
  if ("ms" in fault && !(Number.isFinite(fault.ms) && (fault.ms as number) >= 0)) {
    throw new TypeError(`${prefix}: fault.ms must be a non-negative number, got ${fault.ms}`);
  }
  if (fault.rate !== undefined && !(fault.rate > 0 && fault.rate <= 1)) {
    throw new TypeError(`${prefix}: fault.rate must be in (0, 1], got ${fault.rate}`);
  }
  return { route, fault, remaining: times, random: seededRandom(fault.seed ?? 1) };
}

/**
 * True when `armed` still has hits left and applies to `request`: its route is `*`, the
 * request's `METHOD /resource`, or that resource for any method; and its `match` agrees.
 */
export function faultMatches<R extends FaultRequest>(armed: Armed<FaultCommon<R>>, request: R): boolean {
  if (armed.remaining <= 0) return false;
  const { route } = armed;
  const routeOk =
    route === "*" ||
    route === request.route ||
    (route.startsWith("/") && request.route.slice(request.route.indexOf(" ") + 1) === route);
  if (!routeOk || !(armed.fault.match?.(request) ?? true)) return false;
  const { rate } = armed.fault as FaultCommon<R>;
  return rate === undefined || armed.random() < rate;
}

/** What one HTTP reply of a double is made of. */
export interface DoubleReply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** The request-log fields the shared fault handling fills in. */
export interface FaultedEntry {
  status?: number | undefined;
  outcome?: "answered" | "reset" | "truncated" | "client-gone" | undefined;
}

/** A short label for the request log (`"status 503"`, `"status 503 after"`, `"reset after"`, `"delay before 2000ms"`). */
export function sharedFaultLabel(fault: {
  kind: string;
  status?: number | undefined;
  when?: "before" | "after" | undefined;
  ms?: number | undefined;
  bytes?: number | undefined;
}): string {
  switch (fault.kind) {
    case "status":
      return `status ${fault.status}${fault.when === "after" ? " after" : ""}`;
    case "reset":
      return `reset ${fault.when ?? "before"}`;
    case "delay":
      return `delay ${fault.when ?? "before"} ${fault.ms}ms`;
    case "truncate":
      return `truncate${fault.bytes === undefined ? "" : ` ${fault.bytes}`}`;
    default:
      return fault.kind;
  }
}

/** Sends a whole reply, or notes that the client has gone. */
export function sendReply(res: ServerResponse, entry: FaultedEntry, reply: DoubleReply): void {
  entry.status = reply.status;
  if (res.destroyed || res.writableEnded) {
    entry.outcome = "client-gone";
    return;
  }
  res.writeHead(reply.status, { ...reply.headers, "content-length": String(reply.body.length) });
  res.end(reply.body);
  entry.outcome = "answered";
}

/** The fault kinds every double applies the same way (a double may add its own). */
export type SharedFault =
  | { kind: "status"; status: number; when?: "before" | "after" | undefined }
  | { kind: "reset"; when?: "before" | "after" | undefined }
  | { kind: "delay"; ms: number; when?: "before" | "after" | undefined }
  | { kind: "truncate"; bytes?: number | undefined }
  | { kind: string };

/**
 * Answers one request of a double with `fault` applied, the skeleton both doubles share:
 *
 * - `status` `before` (default): `statusReply()` without processing; `after`: process
 *   (`process()` runs: the command starts, the file is written), then answer the status —
 *   the ambiguous gateway answer.
 * - `reset` `before`: destroy the connection unprocessed; `after`: process, then destroy.
 * - `delay` `before`: wait, then process unless the client left; `after`: process, then wait.
 * - `truncate`: process, then send the full `Content-Length` and only part of the body.
 *
 * Fills in `entry.status` and `entry.outcome`.
 */
export async function answerWithFault(options: {
  req: IncomingMessage;
  res: ServerResponse;
  entry: FaultedEntry;
  fault: SharedFault | undefined;
  process: () => Promise<DoubleReply>;
  statusReply: (status: number) => DoubleReply;
}): Promise<void> {
  const { req, res, entry, process } = options;
  const fault = options.fault as
    | { kind: string; status?: number; when?: "before" | "after"; ms?: number; bytes?: number }
    | undefined;
  let gone = res.destroyed;
  res.once("close", () => {
    if (!res.writableEnded) gone = true;
  });
  const send = (reply: DoubleReply) => sendReply(res, entry, reply);
  const reset = () => {
    entry.outcome = "reset";
    const socket = req.socket as Socket & { resetAndDestroy?: () => void };
    if (typeof socket.resetAndDestroy === "function") socket.resetAndDestroy();
    else socket.destroy();
  };
  const when = fault?.when ?? "before";
  if (fault?.kind === "status" && when === "before") return send(options.statusReply(fault.status as number));
  if (fault?.kind === "reset" && when === "before") return reset();
  if (fault?.kind === "delay" && when === "before") {
    await sleep(fault.ms as number);
    if (gone || res.destroyed) {
      entry.outcome = "client-gone";
      return;
    }
  }
  const reply = await process();
  if (fault?.kind === "status") return send(options.statusReply(fault.status as number));
  if (fault?.kind === "reset") return reset();
  if (fault?.kind === "delay") await sleep(fault.ms as number);
  if (fault?.kind === "truncate" && !gone) {
    const keep = Math.max(0, Math.min(reply.body.length - 1, fault.bytes ?? Math.floor(reply.body.length / 2)));
    entry.status = reply.status;
    entry.outcome = "truncated";
    res.writeHead(reply.status, { ...reply.headers, "content-length": String(reply.body.length) });
    res.write(reply.body.subarray(0, keep), () => req.socket.destroy());
    return;
  }
  send(reply);
}
