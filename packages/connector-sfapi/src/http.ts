import { ConnectorError, type Deadline, deadline, networkErrorCode, neverSent, TimeoutError } from "@sremote/core";
import { Agent, request } from "undici";

/** One HTTP exchange with the API or the token endpoint. */
export interface SfapiRequest {
  method: "GET" | "PUT" | "POST" | "DELETE";
  /** Absolute URL (query included). */
  url: string;
  /** Form fields, sent `application/x-www-form-urlencoded`. */
  form?: Readonly<Record<string, string>> | undefined;
  /** A ready body with its content type (multipart upload). */
  body?: { data: Uint8Array; contentType: string } | undefined;
  /** Bearer token. */
  token?: string | undefined;
  /**
   * Repeating the request cannot repeat a side effect (a read, a token request, an
   * overwrite with the same bytes, `rm -f`). Decides `retryable`; nothing is repeated here.
   */
  idempotent: boolean;
  /** What the request does, for messages (`"download /a/b"`). Never a secret. */
  what: string;
  timeoutMs: number;
}

/** A complete answer (body fully read). */
export interface SfapiResponse {
  status: number;
  body: Uint8Array;
}

/** Statuses of an overloaded or restarting gateway. */
const TRANSIENT_STATUS = new Set([429, 502, 503, 504]);
/** Error codes meaning the request never reached a server. */
/** The server's explanation: OAuth `error_description`, FastAPI `detail`, `error`, else the text (cut). */
export function answerText(body: Uint8Array): string {
  const text = Buffer.from(body).toString("utf8");
  const cut = (s: string) => (s.length > 500 ? `${s.slice(0, 500)}…` : s);
  try {
    const o = JSON.parse(text) as Record<string, unknown> | null;
    if (o && typeof o === "object") {
      const d = o.error_description ?? o.detail ?? o.error;
      if (typeof d === "string" && d !== "") return cut(d);
      if (Array.isArray(d)) return cut(d.map((x) => (x as { msg?: unknown })?.msg ?? JSON.stringify(x)).join("; "));
    }
  } catch {
    // gateways answer HTML
  }
  return cut(text.trim());
}

/** Parses a JSON answer or throws `REMOTE_IO` saying what was expected. */
export function jsonOf(res: SfapiResponse, what: string): Record<string, unknown> {
  try {
    const o = JSON.parse(Buffer.from(res.body).toString("utf8")) as unknown;
    if (o && typeof o === "object" && !Array.isArray(o)) return o as Record<string, unknown>;
  } catch {
    // below
  }
  throw new ConnectorError("REMOTE_IO", "sfapi", `${what}: the answer (HTTP ${res.status}) is not a JSON object`, {
    details: { status: res.status },
  });
}

/**
 * HTTP over a private keep-alive pool. Sends once, reads whole answers, and classifies
 * failures into coded errors whose `retryable` says whether repeating cannot run anything
 * twice; repeating is left to the callers (core's `withRetry`, the task poll loop).
 */
export class SfapiHttp {
  readonly #agent = new Agent({ keepAliveTimeout: 4_000, connections: 16, connect: { timeout: 15_000 } });

  async send(req: SfapiRequest, dl: Deadline): Promise<SfapiResponse> {
    dl.throwIfDone(`sfapi: ${req.what}`);
    const headers: Record<string, string> = { accept: "application/json" };
    let body: string | Uint8Array | undefined;
    if (req.form) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(req.form as Record<string, string>).toString();
    } else if (req.body) {
      headers["content-type"] = req.body.contentType;
      body = req.body.data;
    }
    if (req.token !== undefined) headers.authorization = `Bearer ${req.token}`;
    // This request's own time limit, inside the operation's deadline.
    const local = deadline({ signal: dl.signal, timeoutMs: req.timeoutMs });
    try {
      let res: Awaited<ReturnType<typeof request>>;
      try {
        res = await request(req.url, {
          dispatcher: this.#agent,
          method: req.method,
          headers,
          body,
          signal: local.signal,
        });
      } catch (err) {
        throw this.#classify(err, req, "send", local.timedOut, dl);
      }
      let data: Uint8Array;
      try {
        data = new Uint8Array(await res.body.arrayBuffer());
      } catch (err) {
        throw this.#classify(err, req, "read", local.timedOut, dl);
      }
      if (res.statusCode >= 300 && res.statusCode < 400) {
        // Never followed: a redirect would carry the bearer token elsewhere.
        throw new ConnectorError("REMOTE_IO", "sfapi", `${req.what}: HTTP ${res.statusCode} redirect; check the URL`, {
          details: { status: res.statusCode },
        });
      }
      if (TRANSIENT_STATUS.has(res.statusCode)) {
        // Only 429 says "refused before processing" for certain; a 502/503/504 from a
        // gateway may come after the server acted, so a command POST is not repeated.
        const retryable = req.idempotent || res.statusCode === 429;
        const ra = Number(res.headers["retry-after"]);
        throw new ConnectorError(
          "UNAVAILABLE",
          "sfapi",
          `${req.what}: HTTP ${res.statusCode}${answerText(data) ? `: ${answerText(data)}` : ""}${
            retryable ? "" : " (the request may have been processed; not repeated)"
          }`,
          {
            retryable,
            details: { status: res.statusCode, ...(Number.isFinite(ra) ? { retryAfterMs: ra * 1000 } : {}) },
          },
        );
      }
      return { status: res.statusCode, body: data };
    } finally {
      local.dispose();
    }
  }

  #classify(err: unknown, req: SfapiRequest, phase: "send" | "read", ownTimeout: boolean, dl: Deadline): Error {
    if (dl.signal.aborted) return dl.error(`sfapi: ${req.what}`);
    if (err instanceof ConnectorError) return err;
    if (ownTimeout) {
      return new TimeoutError(`sfapi: ${req.what}: no answer within ${req.timeoutMs} ms`, req.timeoutMs, {
        cause: err,
        retryable: req.idempotent,
      });
    }
    const code = networkErrorCode(err);
    if (phase === "send" && neverSent(err)) {
      return new ConnectorError(
        "CONNECT_FAILED",
        "sfapi",
        `${req.what}: cannot reach ${new URL(req.url).host} (${code})`,
        {
          cause: err,
          retryable: true,
          details: { code },
        },
      );
    }
    return new ConnectorError(
      "CONNECTION_LOST",
      "sfapi",
      `${req.what}: ${phase === "read" ? "answer cut" : "connection lost"} (${code ?? "error"})${
        req.idempotent ? "" : "; the request may have been processed, so it is not repeated"
      }`,
      { cause: err, retryable: req.idempotent, details: { code } },
    );
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => this.#agent.destroy());
  }
}
