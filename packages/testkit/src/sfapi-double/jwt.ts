/**
 * Compact JWTs with node:crypto alone: RS256 verification of client assertions and HS256
 * access tokens issued by the double. No JOSE library: the double needs two algorithms,
 * and verifying them by hand keeps testkit free of a dependency a connector also uses
 * (a bug shared by both sides would go unnoticed).
 */
import { createHmac, type KeyObject, sign, timingSafeEqual, verify } from "node:crypto";

/** A JWT split into its decoded parts. */
export interface DecodedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** `base64url(header).base64url(payload)`: the bytes the signature covers. */
  signingInput: string;
  signature: Buffer;
}

/** Why a string is not a usable JWT. */
export class JwtError extends Error {
  override name = "JwtError";
}

const B64URL = /^[A-Za-z0-9_-]*$/;

export function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

function decodeJson(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch {
    throw new JwtError(`${what} is not base64url-encoded JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new JwtError(`${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Splits and decodes a compact JWS without checking its signature. */
export function decodeJwt(token: string): DecodedJwt {
  const parts = token.split(".");
  if (parts.length !== 3) throw new JwtError("not a compact JWT (three dot-separated parts)");
  const [h, p, s] = parts as [string, string, string];
  if (!B64URL.test(h) || !B64URL.test(p) || !B64URL.test(s) || s === "") {
    throw new JwtError("JWT parts must be non-empty base64url");
  }
  return {
    header: decodeJson(h, "JWT header"),
    payload: decodeJson(p, "JWT payload"),
    signingInput: `${h}.${p}`,
    signature: Buffer.from(s, "base64url"),
  };
}

/** Signs claims as a compact JWS: RS256 with an RSA private key, or HS256 with a secret. */
export function signJwt(
  payload: Record<string, unknown>,
  key: { alg: "RS256"; privateKey: KeyObject | string } | { alg: "HS256"; secret: Buffer },
  extraHeader: Record<string, unknown> = {},
): string {
  const header = { alg: key.alg, typ: "JWT", ...extraHeader };
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  const signature =
    key.alg === "RS256"
      ? sign("sha256", Buffer.from(input), key.privateKey)
      : createHmac("sha256", key.secret).update(input).digest();
  return `${input}.${base64url(signature)}`;
}

/** True when `jwt` carries a valid RS256 signature by `publicKey` (and says `alg: RS256`). */
export function verifyRs256(jwt: DecodedJwt, publicKey: KeyObject): boolean {
  if (jwt.header.alg !== "RS256") return false;
  try {
    return verify("sha256", Buffer.from(jwt.signingInput), publicKey, jwt.signature);
  } catch {
    return false;
  }
}

/** True when `jwt` carries a valid HS256 signature with `secret` (and says `alg: HS256`). */
export function verifyHs256(jwt: DecodedJwt, secret: Buffer): boolean {
  if (jwt.header.alg !== "HS256") return false;
  const expected = createHmac("sha256", secret).update(jwt.signingInput).digest();
  return expected.length === jwt.signature.length && timingSafeEqual(expected, jwt.signature);
}

/** Facts a client assertion must satisfy (RFC 7523 §3, as NERSC's token endpoint checks them). */
export interface AssertionRules {
  /** The token URL the double advertises; `aud` must equal it exactly. */
  tokenUrl: string;
  /** Real time now, in seconds. */
  nowSeconds: number;
  /** Allowed clock difference in seconds. */
  skewSeconds: number;
}

/**
 * Checks the claims of a client assertion (not its signature): `iss == sub`, a string
 * `aud` (or one-element array) equal to the token URL, numeric `exp` in the future,
 * numeric `iat` not in the future, a non-empty string `jti`. Returns the client id, or a
 * reason for refusing.
 */
export function checkAssertionClaims(
  claims: Record<string, unknown>,
  rules: AssertionRules,
): { ok: true; clientId: string; jti: string; exp: number } | { ok: false; reason: string } {
  const { iss, sub, aud, exp, iat, jti } = claims;
  if (typeof iss !== "string" || iss === "") return { ok: false, reason: "the assertion has no iss claim" };
  if (sub !== iss) return { ok: false, reason: "the assertion's sub must equal its iss (the client id)" };
  const audience = Array.isArray(aud) && aud.length === 1 ? aud[0] : aud;
  if (audience !== rules.tokenUrl) {
    return { ok: false, reason: `the assertion's aud must be the token endpoint URL ${rules.tokenUrl}` };
  }
  if (typeof exp !== "number" || !Number.isFinite(exp)) return { ok: false, reason: "the assertion has no exp claim" };
  if (exp <= rules.nowSeconds - rules.skewSeconds) return { ok: false, reason: "the assertion has expired" };
  if (typeof iat !== "number" || !Number.isFinite(iat)) return { ok: false, reason: "the assertion has no iat claim" };
  if (iat > rules.nowSeconds + rules.skewSeconds) return { ok: false, reason: "the assertion's iat is in the future" };
  if (typeof jti !== "string" || jti === "") return { ok: false, reason: "the assertion has no jti claim" };
  return { ok: true, clientId: iss, jti, exp };
}
