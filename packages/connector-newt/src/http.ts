import { ConnectorError, type Deadline, deadline, networkErrorCode, neverSent, TimeoutError } from "@sremote/core";
import { Agent, request } from "undici";

/** Repetition of requests that are safe to repeat (see `NewtConnectorOptions.retry`). */
export interface HttpRetryOptions {
  /** Total sends of a safe request, the first included (default 5). */
  attempts?: number | undefined;
  /** Backoff bound before the second attempt, in ms (default 200). */
  baseDelayMs?: number | undefined;
  /** Upper bound of one backoff, in ms (default 2000). */
  maxDelayMs?: number | undefined;
}

/** One HTTP exchange with NEWT. */
export interface NewtRequest {
  method: "GET" | "PUT" | "POST" | "DELETE";
  /** Path after the base URL, already percent-encoded, starting with `/`. */
  path: string;
  query?: Readonly<Record<string, string>> | undefined;
  /** Form fields, sent `application/x-www-form-urlencoded`. */
  form?: Readonly<Record<string, string>> | undefined;
  /** Raw body (file upload). */
  body?: Uint8Array | undefined;
  /** Session id sent as the `newt_sessionid` cookie. */
  sessionId?: string | undefined;
  /**
   * Repeating the request cannot repeat a side effect (a read, an overwrite with the same
   * bytes, `rm -f`, a login). Decides `retryable` on errors; nothing is repeated here.
   */
  idempotent: boolean;
  /** What the request does, for error messages (`"download /a/b"`). Never a secret. */
  what: string;
  /** Time limit of this one request, in ms. */
  timeoutMs: number;
}

/** A complete answer (body fully read). */
export interface NewtResponse {
  status: number;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: Uint8Array;
}

/** Statuses a gateway sends when it is overloaded or restarting. */
const TRANSIENT_STATUS = new Set([429, 502, 503, 504]);
/**
 * Of those, the one that says the request was refused before processing. A 503 does not:
 * a gateway may answer it after the server acted (see docs/exactly-once.md), so for a
 * command it is ambiguous and the connector asks whether the command ran.
 */
const REFUSED_STATUS = new Set([429]);
/** Error codes meaning the request never left this machine or never reached a server. */
function headerOf(headers: NewtResponse["headers"], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The error text of a NEWT answer: the JSON `error` field when there is one, else the text (cut). */
export function answerText(body: Uint8Array): string {
  const text = Buffer.from(body).toString("utf8");
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed && typeof parsed === "object") {
      const e = (parsed as { error?: unknown; detail?: unknown }).error ?? (parsed as { detail?: unknown }).detail;
      if (typeof e === "string" && e !== "") return e.length > 500 ? `${e.slice(0, 500)}…` : e;
    }
  } catch {
    // production error bodies were not always JSON
  }
  const t = text.trim();
  return t.length > 500 ? `${t.slice(0, 500)}…` : t;
}

/**
 * HTTP transport to one NEWT base URL over a private keep-alive connection pool. Knows
 * nothing of sessions: it sends once, reads whole answers and classifies failures into
 * coded errors whose `retryable` says whether repeating cannot run anything twice.
 * Repeating is left to core's `withRetry` around the connector (one retry path).
 */
export class NewtHttp {
  private readonly agent: Agent;
  private readonly base: URL;

  constructor(baseUrl: string) {
    this.base = new URL(baseUrl);
    // Time limits are enforced per request through AbortSignals; undici's own 300 s
    // header/body timeouts would cut NEWT commands, which may legitimately run 600 s.
    this.agent = new Agent({
      keepAliveTimeout: 4_000,
      headersTimeout: 0,
      bodyTimeout: 0,
      connections: 16,
      connect: { timeout: 15_000 },
    });
  }

  /** The URL a path resolves to (for messages and status; holds no secret). */
  url(path: string): string {
    return `${this.base.href.replace(/\/+$/, "")}${path}`;
  }

  /**
   * Sends `req` once and returns the complete answer for any status except 429/502/503/504,
   * which become `UNAVAILABLE` errors.
   *
   * @throws ConnectorError `CONNECT_FAILED` (never reached the server; retryable),
   *   `CONNECTION_LOST` (sent, answer lost or cut; retryable when idempotent),
   *   `UNAVAILABLE` (retryable for 429 or when idempotent; else ambiguous), a per-request
   *   `TIMEOUT` (retryable when idempotent), or the deadline's `TIMEOUT`/`ABORTED` error.
   */
  async send(req: NewtRequest, dl: Deadline): Promise<NewtResponse> {
    try {
      return await this.once(req, dl);
    } catch (err) {
      if (dl.signal.aborted) throw dl.error(`newt: ${req.what}`);
      throw err;
    }
  }

  private async once(req: NewtRequest, dl: Deadline): Promise<NewtResponse> {
    dl.throwIfDone(`newt: ${req.what}`);
    const url = new URL(this.url(req.path));
    for (const [k, v] of Object.entries(req.query ?? {})) url.searchParams.set(k, v);
    const headers: Record<string, string> = { accept: "application/json, */*" };
    let body: string | Uint8Array | undefined;
    if (req.form) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(req.form as Record<string, string>).toString();
    } else if (req.body) {
      headers["content-type"] = "application/octet-stream";
      body = req.body;
    }
    if (req.sessionId !== undefined) headers.cookie = `newt_sessionid=${req.sessionId}`;

    // This request's own time limit, inside the operation's deadline.
    const local = deadline({ signal: dl.signal, timeoutMs: req.timeoutMs });
    try {
      let res: Awaited<ReturnType<typeof request>>;
      try {
        res = await request(url, {
          dispatcher: this.agent,
          method: req.method,
          headers,
          body,
          signal: local.signal,
        });
      } catch (err) {
        throw this.classify(err, req, "send", local.timedOut);
      }
      let data: Uint8Array;
      try {
        data = new Uint8Array(await res.body.arrayBuffer());
      } catch (err) {
        throw this.classify(err, req, "read", local.timedOut);
      }
      const declared = headerOf(res.headers, "content-length");
      if (declared !== undefined && Number(declared) !== data.length) {
        throw new ConnectorError(
          "CONNECTION_LOST",
          "newt",
          `${req.what}: answer cut at ${data.length} of ${declared} bytes`,
          { retryable: req.idempotent },
        );
      }
      if (res.statusCode >= 300 && res.statusCode < 400) {
        // Never followed: a redirect would carry the session cookie (or a password form) elsewhere.
        const to = headerOf(res.headers, "location") ?? "?";
        throw new ConnectorError(
          "REMOTE_IO",
          "newt",
          `${req.what}: HTTP ${res.statusCode} redirect to ${to.split("?")[0]}; check the base URL (${this.base.origin}${this.base.pathname})`,
          { details: { status: res.statusCode } },
        );
      }
      if (TRANSIENT_STATUS.has(res.statusCode)) {
        const refused = REFUSED_STATUS.has(res.statusCode);
        const mayHaveRun = !refused && !req.idempotent;
        throw new ConnectorError(
          "UNAVAILABLE",
          "newt",
          `${req.what}: HTTP ${res.statusCode} from the gateway${answerText(data) ? `: ${answerText(data)}` : ""}${
            mayHaveRun ? " (the request may have been processed; not retried)" : ""
          }`,
          { retryable: refused || req.idempotent, details: { status: res.statusCode } },
        );
      }
      return { status: res.statusCode, headers: res.headers, body: data };
    } finally {
      local.dispose();
    }
  }

  private classify(err: unknown, req: NewtRequest, phase: "send" | "read", ownTimeout: boolean): Error {
    if (err instanceof ConnectorError) return err;
    if (ownTimeout) {
      // A read that got no answer in time may simply be asked again; anything else may have run.
      return new TimeoutError(`newt: ${req.what}: no answer within ${req.timeoutMs} ms`, req.timeoutMs, {
        cause: err,
        retryable: req.idempotent,
      });
    }
    const code = networkErrorCode(err);
    if (phase === "send" && neverSent(err)) {
      return new ConnectorError("CONNECT_FAILED", "newt", `${req.what}: cannot reach ${this.base.host} (${code})`, {
        cause: err,
        retryable: true,
        details: { code },
      });
    }
    const how = phase === "read" ? "answer cut" : "connection lost";
    return new ConnectorError(
      "CONNECTION_LOST",
      "newt",
      `${req.what}: ${how} (${code ?? (err as Error)?.message ?? "error"})${
        req.idempotent ? "" : "; the request may have been processed, so it is not repeated"
      }`,
      { cause: err, retryable: req.idempotent, details: { code } },
    );
  }

  /** Closes every pooled connection. */
  async close(): Promise<void> {
    await this.agent.close().catch(() => this.agent.destroy());
  }
}
