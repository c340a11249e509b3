import {
  type Deadline,
  type ExecResult,
  MarkerLedger,
  markerCleanupScript,
  markerDir,
  type RequestBudget,
  repeatSafely,
  runExactlyOnce,
  shQuote,
} from "@sremote/core";
import { newNonce, parseMarker, type WrapperInput, wrapCommand } from "./command.js";
import { fail, oneLine } from "./errors.js";
import { answerText, type NewtHttp, type NewtRequest, type NewtResponse } from "./http.js";
import type { NewtLogin } from "./login.js";
import type { ResolvedOptions } from "./options.js";

export type PathKind = "missing" | "dir" | "file" | "unreadable";

// `$1` carries the path: no user data inside the script text.
const PROBE_SCRIPT =
  'if [ -d "$1" ]; then echo dir; elif [ -e "$1" ]; then if [ -r "$1" ]; then echo file; else echo unreadable; fi; else echo missing; fi';

function tail(text: string, max = 2000): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

function isUnknownSystem(res: NewtResponse): boolean {
  return res.status === 404 && /unrecognized system/i.test(answerText(res.body));
}

/** NEWT's API for one machine, over a logged-in session: `/file` paths and `/command`. */
export class NewtApi {
  /** Markers of recorded commands that can be removed (carried by the next command, or on close). */
  readonly ledger = new MarkerLedger();
  /** The marker folder (a shell word). */
  readonly markerDir: string;
  /** How often requests that are safe to repeat are sent again. */
  readonly budget: RequestBudget;

  constructor(
    readonly opts: ResolvedOptions,
    readonly session: NewtLogin,
    readonly http: NewtHttp,
  ) {
    this.markerDir = markerDir(opts.tempDir);
    this.budget = opts.budget;
  }

  /**
   * One request with the session cookie; an idempotent one is sent again after a failure
   * that proves nothing happened or does not matter (503, reset, timeout), under the budget.
   */
  request(req: Omit<NewtRequest, "sessionId">, dl: Deadline): Promise<NewtResponse> {
    if (!req.idempotent) return this.session.authed(req, dl);
    return repeatSafely(() => this.session.authed(req, dl), dl, this.budget);
  }

  get machine(): string {
    return this.opts.machine;
  }

  filePath(segments: readonly string[]): string {
    return `/file/${this.machine}/${segments.map(encodeURIComponent).join("/")}`;
  }

  throwIfUnknownSystem(res: NewtResponse): void {
    if (isUnknownSystem(res)) {
      throw fail("CONNECT_FAILED", `NEWT at ${this.opts.baseUrl} does not know the system "${this.machine}"`, {
        details: { machine: this.machine },
      });
    }
  }

  /** What is at `path`, asked through a command (NEWT's file API does not say). */
  async probe(path: string, dl: Deadline): Promise<PathKind> {
    const r = await this.runWrapped({ argv: ["/bin/sh", "-c", PROBE_SCRIPT, "sh", path] }, dl, true, `inspect ${path}`);
    const kind = r.stdout.trim();
    if (kind === "missing" || kind === "dir" || kind === "file" || kind === "unreadable") return kind;
    throw fail("REMOTE_IO", `cannot inspect ${path}: ${oneLine(r.stderr) || "no answer"}`);
  }

  /**
   * Runs argv through the exit-marker wrapper and returns what it did. An idempotent
   * command (flagged by the caller) is simply sent again after an ambiguous failure; any
   * other runs exactly once (core's `runExactlyOnce`): recorded under a nonce, and after
   * an ambiguous failure NEWT is asked whether it ran. `onSend` sees each nonce sent.
   */
  async runWrapped(
    input: WrapperInput,
    dl: Deadline,
    idempotent: boolean,
    what: string,
    loginEnv = false,
    onSend?: (nonce: string) => void,
  ): Promise<ExecResult> {
    if (idempotent) {
      const nonce = newNonce();
      onSend?.(nonce);
      const r = await this.#sendWrapped(input, nonce, dl, true, what, loginEnv);
      if (r === undefined) throw this.#markerMissing(what, "", "");
      return r;
    }
    return runExactlyOnce<ExecResult>(
      {
        connector: "newt",
        what,
        dir: this.markerDir,
        ledger: this.ledger,
        send: (nonce, cleanup, d) => {
          onSend?.(nonce);
          return this.#sendWrapped(
            { ...input, record: { dir: this.markerDir, cleanup } },
            nonce,
            d,
            false,
            what,
            loginEnv,
          );
        },
        query: async (script, d) => {
          const r = await this.command(`/bin/sh -c ${shQuote(script)}`, false, d, false, `${what}: ask whether it ran`);
          return { stdout: r.output, stderr: r.error };
        },
        recovered: (rec) => ({ ...rec, signal: null }),
      },
      dl,
      this.budget,
    );
  }

  /** Removes the markers of finished commands (on close); best effort, repeated under the budget. */
  async cleanMarkers(dl: Deadline): Promise<void> {
    const nonces = this.ledger.take(Number.POSITIVE_INFINITY);
    const unsettled = this.ledger.takeUnsettled();
    if (nonces.remove.length + nonces.shrink.length + unsettled.length === 0) return;
    const script = markerCleanupScript(nonces, this.markerDir, unsettled);
    try {
      await this.command(`/bin/sh -c ${shQuote(script)}`, false, dl, true, "remove command markers");
    } catch {
      this.ledger.restore(nonces);
    }
  }

  /** Sends one wrapped command; undefined when the answer has no exit marker. */
  async #sendWrapped(
    input: WrapperInput,
    nonce: string,
    dl: Deadline,
    idempotent: boolean,
    what: string,
    loginEnv: boolean,
  ): Promise<ExecResult | undefined> {
    const wrapped = wrapCommand(input, nonce);
    const r = await this.command(wrapped.executable, loginEnv, dl, idempotent, what);
    const m = parseMarker(r.error, wrapped.nonce);
    if (!m.found) {
      // A recorded command is asked about; any other has failed.
      if (input.record) return undefined;
      throw this.#markerMissing(what, r.output, r.error);
    }
    return { stdout: r.output, stderr: m.stderr, exitCode: m.exitCode, signal: null };
  }

  #markerMissing(what: string, stdout: string, stderr: string): Error {
    return fail(
      "COMMAND_FAILED",
      `${what}: the command's exit marker is missing from its stderr, so it was killed (for example by NEWT's time limit) or never ran${
        stderr.trim() ? `; stderr: ${oneLine(tail(stderr, 300))}` : ""
      }`,
      { details: { stdout: tail(stdout), stderr: tail(stderr), markerMissing: true } },
    );
  }

  /** `POST /command/{machine}`; returns NEWT's `{output, error}`. */
  async command(
    executable: string,
    loginEnv: boolean,
    dl: Deadline,
    idempotent: boolean,
    what: string,
  ): Promise<{ output: string; error: string }> {
    const res = await this.request(
      {
        method: "POST",
        path: `/command/${this.machine}`,
        form: { executable, loginenv: loginEnv ? "true" : "false" },
        idempotent,
        what,
        timeoutMs: this.opts.commandTimeoutMs,
      },
      dl,
    );
    this.throwIfUnknownSystem(res);
    if (res.status === 401 || res.status === 403) {
      throw fail("PERMISSION_DENIED", `${what}: ${answerText(res.body) || `HTTP ${res.status}`}`, {
        details: { status: res.status },
      });
    }
    if (res.status !== 200) {
      const text = answerText(res.body);
      throw fail("COMMAND_FAILED", `${what}: HTTP ${res.status}${text ? `: ${text}` : ""}`, {
        details: { status: res.status },
      });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(res.body).toString("utf8"));
    } catch {
      throw fail("REMOTE_IO", `${what}: the answer is not JSON`, { details: { status: res.status } });
    }
    const o = (parsed ?? {}) as Record<string, unknown>;
    if (typeof o.output !== "string" && typeof o.error !== "string") {
      throw fail("REMOTE_IO", `${what}: the answer has neither "output" nor "error"`);
    }
    return {
      output: typeof o.output === "string" ? o.output : "",
      error: typeof o.error === "string" ? o.error : "",
    };
  }
}
