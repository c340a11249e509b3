/**
 * The token endpoint (`POST /c2id/token`, OAuth2 client credentials with a `private_key_jwt`
 * assertion) and the bearer check of the API.
 *
 * Assertion times are checked against the real time: they are signed with the client's
 * real clock, and advancing the double's clock (to expire access tokens) must not make a
 * fresh assertion look stale. Access tokens and client expiry use the double's clock.
 */
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { checkAssertionClaims, decodeJwt, JwtError, signJwt, verifyHs256, verifyRs256 } from "./jwt.js";
import type { Caller, ClientRecord, Reply, SfapiState } from "./state.js";
import { json } from "./state.js";
import type { SfapiRequestLogEntry } from "./types.js";

export const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

function oauthError(status: 400 | 401, error: string, description: string): Reply {
  return json(status, { error, error_description: description }, { "cache-control": "no-store" });
}

function clientUsable(st: SfapiState, client: ClientRecord): string | undefined {
  if (client.revoked) return "the client has been revoked";
  const expiresAt = client.view.expiresAt;
  if (expiresAt !== undefined && expiresAt <= st.clock.now()) return "the client has expired";
  return undefined;
}

/** Issues an HS256 access token carrying `exp`, `sub` and `client_id`. */
export function issueAccessToken(st: SfapiState, client: ClientRecord, lifetimeSeconds: number): string {
  const iat = Math.floor(st.clock.now() / 1000);
  return signJwt(
    {
      iss: st.tokenUrl.slice(0, st.tokenUrl.length - st.tokenPath.length),
      sub: client.view.clientId,
      client_id: client.view.clientId,
      aud: st.apiPrefix,
      username: client.view.username,
      scope: client.view.color,
      iat,
      // Milliseconds of issue, so revokeAccessTokens() can cut between two tokens of one second.
      iat_ms: st.clock.now(),
      exp: iat + lifetimeSeconds,
      jti: randomUUID(),
    },
    { alg: "HS256", secret: st.tokenSecret },
  );
}

/** Handles a token request; records the client id and the OAuth error code in the log entry. */
export function tokenEndpoint(
  st: SfapiState,
  entry: SfapiRequestLogEntry,
  method: string,
  contentType: string,
  form: Record<string, string>,
): Reply {
  const refuse = (status: 400 | 401, error: string, description: string) => {
    entry.tokenError = error;
    return oauthError(status, error, description);
  };
  if (method !== "POST") return refuse(400, "invalid_request", "the token endpoint accepts POST only");
  if (!/^application\/x-www-form-urlencoded\b/i.test(contentType)) {
    return refuse(400, "invalid_request", "the body must be application/x-www-form-urlencoded");
  }
  if (form.grant_type === undefined) return refuse(400, "invalid_request", "missing grant_type");
  if (form.grant_type !== "client_credentials") {
    return refuse(400, "unsupported_grant_type", `unsupported grant_type ${form.grant_type}`);
  }
  if (form.client_assertion_type !== ASSERTION_TYPE) {
    return refuse(400, "invalid_request", `client_assertion_type must be ${ASSERTION_TYPE}`);
  }
  const assertion = form.client_assertion;
  if (assertion === undefined || assertion === "") return refuse(400, "invalid_request", "missing client_assertion");

  let jwt: ReturnType<typeof decodeJwt>;
  try {
    jwt = decodeJwt(assertion);
  } catch (err) {
    if (err instanceof JwtError) return refuse(401, "invalid_client", `bad client assertion: ${err.message}`);
    throw err;
  }
  const iss = jwt.payload.iss;
  const client = typeof iss === "string" ? st.clients.get(iss) : undefined;
  if (!client) return refuse(401, "invalid_client", "unknown client");
  if (form.client_id !== undefined && form.client_id !== iss) {
    return refuse(401, "invalid_client", "client_id does not match the assertion's iss");
  }
  if (jwt.header.alg !== "RS256") return refuse(401, "invalid_client", "the assertion must be signed with RS256");
  if (client.kid !== undefined && jwt.header.kid !== undefined && jwt.header.kid !== client.kid) {
    return refuse(401, "invalid_client", "unknown key id (kid)");
  }
  if (!verifyRs256(jwt, client.publicKey)) return refuse(401, "invalid_client", "invalid assertion signature");
  const nowSeconds = Date.now() / 1000;
  const claims = checkAssertionClaims(jwt.payload, {
    tokenUrl: st.tokenUrl,
    nowSeconds,
    skewSeconds: st.assertionSkewSeconds,
  });
  if (!claims.ok) return refuse(401, "invalid_client", claims.reason);
  for (const [jti, exp] of st.seenJti) if (exp + st.assertionSkewSeconds < nowSeconds) st.seenJti.delete(jti);
  if (st.seenJti.has(claims.jti)) return refuse(401, "invalid_client", "the assertion's jti has been used before");
  st.seenJti.set(claims.jti, claims.exp);
  entry.clientId = client.view.clientId;
  entry.username = client.view.username;
  const unusable = clientUsable(st, client);
  if (unusable) return refuse(401, "invalid_client", unusable);
  return json(
    200,
    {
      access_token: issueAccessToken(st, client, st.tokenLifetimeSeconds),
      token_type: "Bearer",
      expires_in: st.tokenLifetimeSeconds,
      scope: client.view.color,
    },
    { "cache-control": "no-store" },
  );
}

/** What the `Authorization` header of a request amounts to. */
export type BearerCheck =
  | { kind: "valid"; caller: Caller }
  | { kind: "none" | "invalid" | "expired"; reason: string; clientId?: string | undefined };

/** Checks `Authorization: Bearer <token>` against the tokens this double issued. */
export function checkBearer(st: SfapiState, headers: IncomingHttpHeaders): BearerCheck {
  const header = headers.authorization;
  if (header === undefined) return { kind: "none", reason: "Not authenticated" };
  const m = /^Bearer +(\S+)\s*$/i.exec(header);
  if (!m) return { kind: "invalid", reason: "Invalid authentication credentials: expected a Bearer token" };
  let jwt: ReturnType<typeof decodeJwt>;
  try {
    jwt = decodeJwt(m[1] as string);
  } catch {
    return { kind: "invalid", reason: "Invalid token" };
  }
  if (!verifyHs256(jwt, st.tokenSecret)) return { kind: "invalid", reason: "Invalid token" };
  const { client_id: claimedId, exp, iat_ms: iatMs } = jwt.payload;
  const clientId = typeof claimedId === "string" ? claimedId : undefined;
  const client = clientId === undefined ? undefined : st.clients.get(clientId);
  if (!client || typeof exp !== "number" || typeof iatMs !== "number") {
    return { kind: "invalid", reason: "Invalid token" };
  }
  if (iatMs < st.tokensValidFrom) return { kind: "invalid", reason: "Token has been revoked", clientId };
  if (exp * 1000 <= st.clock.now()) return { kind: "expired", reason: "Token expired", clientId };
  const unusable = clientUsable(st, client);
  if (unusable) return { kind: "invalid", reason: `Invalid token: ${unusable}`, clientId };
  return { kind: "valid", caller: { client, username: client.view.username } };
}
