import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { ConnectorError, type Deadline, deadline, repeatSafely, UsageError } from "@sremote/core";
import { fail, oneLine } from "./errors.js";
import { answerText, jsonOf, type SfapiHttp, type SfapiRequest, type SfapiResponse } from "./http.js";
import type { ResolvedOptions } from "./options.js";
import type { TokenSource } from "./token.js";

/** What a finished command task reported (spec §3.1). */
export interface TaskOutput {
  output: string;
  error: string;
  /** The API's `exit_code`; null when it did not say. */
  exitCode: number | null;
}

/** Limit on consecutive failed status questions of one task before giving up. */
const MAX_POLL_FAILURES = 8;

function isRetryable(err: unknown): boolean {
  return (err as { retryable?: unknown })?.retryable === true;
}

/** The same error, but not retryable: a command already ran, so the operation must not be repeated. */
function afterRun(err: unknown, what: string): unknown {
  if (!(err instanceof ConnectorError) || !err.retryable) return err;
  return fail(
    err.code as ConnectorError["code"] & Parameters<typeof fail>[0],
    `${what}: ${err.message.replace(/^sfapi: /, "")} (after the command was started: not repeated)`,
    {
      cause: err,
      details: { ...err.details },
    },
  );
}

/** SFAPI for one machine over a token: authenticated requests, command tasks, file transfer. */
export class SfapiApi {
  /** Recent task durations (ms, POST answer to terminal status) per kind of command, newest last. */
  readonly #durations = new Map<string, number[]>();

  constructor(
    readonly opts: ResolvedOptions,
    readonly tokens: TokenSource,
    readonly http: SfapiHttp,
  ) {}

  /** `{apiUrl}/utilities/{kind}/{machine}/` + the absolute path, segments encoded, as the official client (`//`). */
  fileUrl(kind: "upload" | "download", path: string): string {
    if (!path.startsWith("/"))
      throw new UsageError(`sfapi: ${kind} needs an absolute path, got ${JSON.stringify(path)}`);
    const segments = path.split("/").filter((s) => s !== "");
    if (segments.some((s) => s === "." || s === "..")) {
      throw new UsageError(`sfapi: ${kind}: path must not contain '.' or '..' segments: ${JSON.stringify(path)}`);
    }
    return `${this.opts.apiUrl}/utilities/${kind}/${encodeURIComponent(this.opts.machine)}//${segments.map(encodeURIComponent).join("/")}`;
  }

  /**
   * Sends with the bearer token. A 401 means nothing was done: with client credentials the
   * token is renewed and the request sent once more (safe even for a command); with a
   * ready token, or if the new one is refused too, it is `AUTH_FAILED`.
   */
  async authed(req: Omit<SfapiRequest, "token">, dl: Deadline): Promise<SfapiResponse> {
    let token = await this.tokens.get(dl);
    let res = await this.http.send({ ...req, token }, dl);
    if (res.status === 401 && this.tokens.renewable) {
      this.tokens.invalidate(token);
      token = await this.tokens.get(dl);
      res = await this.http.send({ ...req, token }, dl);
    }
    if (res.status === 401) {
      throw fail(
        "AUTH_FAILED",
        `${req.what}: the API refused the access token: ${answerText(res.body) || "HTTP 401"}${
          this.tokens.renewable ? "" : " (a ready access token is not renewed; get a new one)"
        }`,
        { details: { status: 401 } },
      );
    }
    return res;
  }

  /** An authenticated request; an idempotent one is sent again after a transient failure, under the budget. */
  request(req: Omit<SfapiRequest, "token">, dl: Deadline): Promise<SfapiResponse> {
    if (!req.idempotent) return this.authed(req, dl);
    return repeatSafely(() => this.authed(req, dl), dl, this.opts.budget);
  }

  /**
   * `POST /utilities/command/{machine}`, then `GET /tasks/{id}` until a terminal status.
   * The POST is sent once and never cut by the caller's deadline (its answer carries the
   * task id needed to cancel); once `dl` fires the task is cancelled (`DELETE`). With
   * `idempotent`, a failure of the POST is raised retryable (the caller repeats it).
   */
  async runCommand(
    executable: string,
    dl: Deadline,
    what: string,
    kind = what,
    idempotent = false,
  ): Promise<TaskOutput> {
    dl.throwIfDone(`sfapi: ${what}`);
    const postDl = deadline({ timeoutMs: this.opts.requestTimeoutMs });
    let taskId: string;
    try {
      const res = await this.authed(
        {
          method: "POST",
          url: `${this.opts.apiUrl}/utilities/command/${encodeURIComponent(this.opts.machine)}`,
          form: { executable },
          idempotent,
          what,
          timeoutMs: this.opts.requestTimeoutMs,
        },
        postDl,
      );
      taskId = this.#taskIdOf(res, what);
    } finally {
      postDl.dispose();
    }
    const posted = Date.now();
    try {
      const out = await this.#poll(taskId, dl, what, this.#firstWait(kind));
      this.#noteDuration(kind, Date.now() - posted);
      return out;
    } catch (err) {
      // Cancelled, timed out, or no longer observable: the task must not run on unseen.
      await this.cancelTask(taskId);
      if (dl.signal.aborted) throw dl.error(`sfapi: ${what}`);
      throw afterRun(err, what);
    }
  }

  #taskIdOf(res: SfapiResponse, what: string): string {
    if (res.status === 403) {
      const text = answerText(res.body);
      throw fail(
        "AUTH_FAILED",
        `${what}: ${text || "HTTP 403"}. Command execution needs a red SFAPI client (security level "red", created in Iris); yellow and green clients may only read status and files`,
        { details: { status: 403 } },
      );
    }
    if (res.status === 404) {
      throw fail("CONNECT_FAILED", `${what}: SFAPI does not know the machine "${this.opts.machine}"`, {
        details: { status: 404, machine: this.opts.machine },
      });
    }
    if (res.status !== 200) {
      throw fail("COMMAND_FAILED", `${what}: HTTP ${res.status}: ${answerText(res.body)}`, {
        details: { status: res.status },
      });
    }
    const o = jsonOf(res, what);
    if (o.status !== "OK" || (typeof o.task_id !== "string" && typeof o.task_id !== "number")) {
      throw fail("COMMAND_FAILED", `${what}: SFAPI did not accept the command: ${String(o.error ?? o.status)}`);
    }
    return String(o.task_id);
  }

  /**
   * First wait: 90 % of the shortest recent duration of this kind of command (so a typical
   * command is asked about once, each question being a request), at least `pollIntervalMs`.
   * Unknown kinds start at `pollIntervalMs`.
   */
  #firstWait(kind: string): number {
    const d = this.#durations.get(kind);
    const typical = d && d.length > 0 ? Math.min(...d) * 0.9 : 0;
    return Math.min(this.opts.pollMaxIntervalMs, Math.max(this.opts.pollIntervalMs, typical));
  }

  #noteDuration(kind: string, ms: number): void {
    const d = this.#durations.get(kind) ?? [];
    d.push(ms);
    if (d.length > 5) d.shift();
    this.#durations.delete(kind);
    this.#durations.set(kind, d);
    // Bounded: the oldest kinds are forgotten first.
    if (this.#durations.size > 64) this.#durations.delete(this.#durations.keys().next().value as string);
  }

  async #poll(taskId: string, dl: Deadline, what: string, first: number): Promise<TaskOutput> {
    let wait = first;
    let asked = 0;
    let failures = 0;
    for (;;) {
      await sleep(wait, undefined, { signal: dl.signal }).catch(() => undefined);
      dl.throwIfDone(`sfapi: ${what}`);
      let res: SfapiResponse;
      try {
        res = await this.authed(
          {
            method: "GET",
            url: `${this.opts.apiUrl}/tasks/${encodeURIComponent(taskId)}`,
            idempotent: true,
            what: `${what}: task ${taskId}`,
            timeoutMs: this.opts.requestTimeoutMs,
          },
          dl,
        );
      } catch (err) {
        // A status question that failed is a missed question: the task goes on regardless.
        if (dl.signal.aborted || !isRetryable(err) || ++failures > MAX_POLL_FAILURES) throw err;
        const after = Number((err as ConnectorError).details?.retryAfterMs);
        wait = Math.min(
          10_000,
          Math.max(Math.min(wait * 2, this.opts.pollMaxIntervalMs), Number.isFinite(after) ? after : 0),
        );
        continue;
      }
      failures = 0;
      if (res.status !== 200) {
        throw fail("REMOTE_IO", `${what}: task ${taskId}: HTTP ${res.status}: ${answerText(res.body)}`, {
          details: { status: res.status, taskId },
        });
      }
      const task = jsonOf(res, `${what}: task ${taskId}`);
      const status = String(task.status);
      if (status === "new" || status === "running" || status === "pending") {
        // After the estimate missed, ask again soon, then back off.
        wait =
          asked++ === 0
            ? Math.max(this.opts.pollIntervalMs, first / 4)
            : Math.min(wait * 2, this.opts.pollMaxIntervalMs);
        continue;
      }
      if (status === "completed") return this.#resultOf(task.result, taskId, what);
      const text = typeof task.result === "string" ? oneLine(task.result) : "";
      throw fail("COMMAND_FAILED", `${what}: task ${taskId} ended ${status}${text ? `: ${text}` : ""}`, {
        details: { taskId, status },
      });
    }
  }

  #resultOf(result: unknown, taskId: string, what: string): TaskOutput {
    let o: Record<string, unknown> | undefined;
    if (typeof result === "string") {
      try {
        const parsed = JSON.parse(result) as unknown;
        if (parsed && typeof parsed === "object") o = parsed as Record<string, unknown>;
      } catch {
        // below
      }
    } else if (result && typeof result === "object") {
      o = result as Record<string, unknown>;
    }
    if (!o)
      throw fail("REMOTE_IO", `${what}: task ${taskId} completed without a readable result`, { details: { taskId } });
    return {
      output: typeof o.output === "string" ? o.output : "",
      error: typeof o.error === "string" ? o.error : "",
      exitCode: typeof o.exit_code === "number" ? o.exit_code : null,
    };
  }

  /** `DELETE /tasks/{id}` (the process group is killed), best effort, on its own deadline. */
  async cancelTask(taskId: string): Promise<void> {
    const dl = deadline({ timeoutMs: Math.min(15_000, this.opts.requestTimeoutMs) });
    try {
      await this.authed(
        {
          method: "DELETE",
          url: `${this.opts.apiUrl}/tasks/${encodeURIComponent(taskId)}`,
          idempotent: true,
          what: `cancel task ${taskId}`,
          timeoutMs: Math.min(15_000, this.opts.requestTimeoutMs),
        },
        dl,
      );
    } catch {
      // best effort: the machine's own limits end it eventually
    } finally {
      dl.dispose();
    }
  }

  /** `PUT /utilities/upload/…` with one multipart part `file`. */
  async upload(path: string, data: Uint8Array, dl: Deadline): Promise<void> {
    const boundary = `sremote-${randomBytes(16).toString("hex")}`;
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="upload"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    );
    const body = Buffer.concat([head, data, Buffer.from(`\r\n--${boundary}--\r\n`)]);
    const what = `upload ${path}`;
    const res = await this.request(
      {
        method: "PUT",
        url: this.fileUrl("upload", path),
        body: { data: body, contentType: `multipart/form-data; boundary=${boundary}` },
        idempotent: true,
        what,
        timeoutMs: this.opts.requestTimeoutMs,
      },
      dl,
    );
    this.#fileAnswer(res, path, what);
  }

  /** `GET /utilities/download/…?binary=true`, base64-decoded. */
  async download(path: string, dl: Deadline): Promise<Uint8Array> {
    const what = `download ${path}`;
    const res = await this.request(
      {
        method: "GET",
        url: `${this.fileUrl("download", path)}?binary=true`,
        idempotent: true,
        what,
        timeoutMs: this.opts.requestTimeoutMs,
      },
      dl,
    );
    const o = this.#fileAnswer(res, path, what);
    if (typeof o.file !== "string") throw fail("REMOTE_IO", `${what}: the answer has no file content`);
    if (o.is_binary === false) return new TextEncoder().encode(o.file);
    const bytes = Buffer.from(o.file, "base64");
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Maps a file answer: 200 `status:"ERROR"` texts and 403/404/422 to coded errors. */
  #fileAnswer(res: SfapiResponse, path: string, what: string): Record<string, unknown> {
    const details = { path, status: res.status };
    if (res.status === 403) {
      throw fail("PERMISSION_DENIED", `${what}: ${answerText(res.body) || "HTTP 403"}`, { details });
    }
    if (res.status === 404) {
      throw fail(
        "FILE_NOT_FOUND",
        `${what}: ${answerText(res.body) || "not found"} (is "${this.opts.machine}" an SFAPI machine?)`,
        {
          details,
        },
      );
    }
    if (res.status !== 200)
      throw fail("REMOTE_IO", `${what}: HTTP ${res.status}: ${answerText(res.body)}`, { details });
    const o = jsonOf(res, what);
    if (o.status === "OK") return o;
    const error = typeof o.error === "string" ? o.error : String(o.status);
    if (/no such file or directory|not found/i.test(error))
      throw fail("FILE_NOT_FOUND", `${what}: ${oneLine(error)}`, { details });
    if (/permission denied|not permitted/i.test(error)) {
      throw fail("PERMISSION_DENIED", `${what}: ${oneLine(error)}`, { details });
    }
    throw fail("REMOTE_IO", `${what}: ${oneLine(error)}`, { details });
  }
}
