/**
 * What the HTTP test doubles (newt-double, sfapi-double) share: reading a bounded request
 * body, errno codes, and the parts of fault injection that do not depend on the API.
 */
import type { IncomingMessage } from "node:http";

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
}

/** A fault waiting for requests: its route key, the fault, and the hits left. */
export interface Armed<F> {
  route: string;
  fault: F;
  remaining: number;
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
  return { route, fault, remaining: times };
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
  return routeOk && (armed.fault.match?.(request) ?? true);
}
