import { type ConnectorError, type Deadline, deadline, raceSignal } from "@sremote/core";
import { clientAssertion } from "./credentials.js";
import { fail } from "./errors.js";
import { answerText, jsonOf, type SfapiHttp } from "./http.js";
import type { ResolvedOptions } from "./options.js";

const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

interface Held {
  token: string;
  /** Local time (ms) after which a new token is fetched before use. */
  renewAt: number;
}

/**
 * Access tokens by OAuth2 client credentials with a signed JWT (SFAPI spec §2): fetched
 * lazily, shared by concurrent operations, renewed shortly before expiry (60 s, or a
 * quarter of a short lifetime) and after a 401. A refused client (wrong or revoked key,
 * expired client) is remembered: its assertion is not sent again.
 */
export class TokenSource {
  #held: Held | undefined;
  #fetching: Promise<Held> | undefined;
  #failure: ConnectorError | undefined;
  /** Number of tokens obtained (for status). */
  issued = 0;

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly http: SfapiHttp,
    private readonly closeSignal: AbortSignal,
  ) {
    if (opts.auth.kind === "token") this.#held = { token: opts.auth.token, renewAt: Number.POSITIVE_INFINITY };
  }

  /** True when a new token can be had (client credentials, not a ready token). */
  get renewable(): boolean {
    return this.opts.auth.kind === "client";
  }

  get failure(): ConnectorError | undefined {
    return this.#failure;
  }

  /** A token believed valid. */
  async get(dl: Deadline): Promise<string> {
    if (this.#failure) throw this.#failure;
    const held = this.#held;
    if (held && Date.now() < held.renewAt) return held.token;
    if (!this.renewable) return (held as Held).token;
    this.#fetching ??= this.#fetch().finally(() => {
      this.#fetching = undefined;
    });
    const got = await raceSignal(this.#fetching, dl.signal).catch((err: unknown) => {
      throw dl.signal.aborted ? dl.error("sfapi: get an access token") : err;
    });
    return got.token;
  }

  /** Forgets `token` after the API refused it (401), so the next {@link get} fetches a new one. */
  invalidate(token: string): void {
    if (this.#held?.token === token && this.renewable) this.#held = undefined;
  }

  /** One token request; detached from any one caller (shared), bounded by its own time limit and close(). */
  async #fetch(): Promise<Held> {
    if (this.opts.auth.kind !== "client") throw new Error("unreachable");
    const { client } = this.opts.auth;
    const dl = deadline({ timeoutMs: this.opts.requestTimeoutMs }, this.closeSignal);
    const what = `get an access token for client ${client.clientId}`;
    try {
      const res = await this.http.send(
        {
          method: "POST",
          url: this.opts.tokenUrl,
          form: {
            grant_type: "client_credentials",
            client_assertion_type: ASSERTION_TYPE,
            client_assertion: clientAssertion(client, this.opts.tokenUrl),
          },
          idempotent: true,
          what,
          timeoutMs: this.opts.requestTimeoutMs,
        },
        dl,
      );
      if (res.status === 400 || res.status === 401 || res.status === 403) {
        let code = "";
        try {
          const e = jsonOf(res, what).error;
          if (typeof e === "string") code = e;
        } catch {
          // not OAuth JSON: the text says enough
        }
        this.#failure = fail(
          "AUTH_FAILED",
          `the token endpoint refused client ${client.clientId}${code ? ` (${code})` : ""}: ${
            answerText(res.body) || `HTTP ${res.status}`
          }. Check the key file and that the client is still valid in Iris; the assertion is not sent again`,
          { details: { status: res.status, error: code || undefined } },
        );
        throw this.#failure;
      }
      if (res.status !== 200) {
        throw fail(
          "REMOTE_IO",
          `${what}: HTTP ${res.status}${answerText(res.body) ? `: ${answerText(res.body)}` : ""}`,
          {
            details: { status: res.status },
          },
        );
      }
      const o = jsonOf(res, what);
      const token = o.access_token;
      if (typeof token !== "string" || token === "") throw fail("REMOTE_IO", `${what}: no access_token in the answer`);
      const lifetime = typeof o.expires_in === "number" && o.expires_in > 0 ? o.expires_in : 600;
      const leeway = Math.min(60, lifetime / 4);
      const held = { token, renewAt: Date.now() + (lifetime - leeway) * 1000 };
      this.#held = held;
      this.issued++;
      return held;
    } finally {
      dl.dispose();
    }
  }
}
