import type { Deadline, ExecResult } from "@sremote/core";
import { newNonce, parseMarker, type WrapperInput, wrapCommand } from "./command.js";
import { fail, oneLine } from "./errors.js";
import { answerText, type NewtHttp, type NewtResponse } from "./http.js";
import type { ResolvedOptions } from "./options.js";
import type { NewtSession } from "./session.js";

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
  constructor(
    readonly opts: ResolvedOptions,
    readonly session: NewtSession,
    readonly http: NewtHttp,
  ) {}

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

  /** Runs argv through the exit-marker wrapper and returns what it did. */
  async runWrapped(
    input: WrapperInput,
    dl: Deadline,
    idempotent: boolean,
    what: string,
    loginEnv = false,
    nonce = newNonce(),
  ): Promise<ExecResult> {
    const wrapped = wrapCommand(input, nonce);
    const r = await this.command(wrapped.executable, loginEnv, dl, idempotent, what);
    const m = parseMarker(r.error, wrapped.nonce);
    if (!m.found) {
      throw fail(
        "COMMAND_FAILED",
        `${what}: the command's exit marker is missing from its stderr, so it was killed (for example by NEWT's time limit) or never ran${
          r.error.trim() ? `; stderr: ${oneLine(tail(r.error, 300))}` : ""
        }`,
        { details: { stdout: tail(r.output), stderr: tail(r.error), markerMissing: true } },
      );
    }
    return { stdout: r.output, stderr: m.stderr, exitCode: m.exitCode, signal: null };
  }

  /** `POST /command/{machine}`; returns NEWT's `{output, error}`. */
  async command(
    executable: string,
    loginEnv: boolean,
    dl: Deadline,
    idempotent: boolean,
    what: string,
  ): Promise<{ output: string; error: string }> {
    const res = await this.session.authed(
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
