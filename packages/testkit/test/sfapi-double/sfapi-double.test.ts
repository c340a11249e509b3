import { createPrivateKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { mapSfapiPath } from "../../src/sfapi-double/api-files.js";
import { armFault, faultMatches } from "../../src/sfapi-double/faults.js";
import { apiRoute, redactForm } from "../../src/sfapi-double/http.js";
import {
  checkAssertionClaims,
  decodeJwt,
  JwtError,
  signJwt,
  verifyHs256,
  verifyRs256,
} from "../../src/sfapi-double/jwt.js";
import { jwkKeyFileText, pemKeyFileText, publicKeyFrom, randomClientId } from "../../src/sfapi-double/keys.js";

// The double's pure helpers: JWTs, assertion rules, path mapping, route keys, redaction.

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
const TOKEN_URL = "http://127.0.0.1:1/c2id/token";

describe("JWTs", () => {
  it("RS256: a signed token verifies with its public key, not with another, and not once altered", () => {
    const jwt = signJwt({ iss: "x" }, { alg: "RS256", privateKey });
    expect(verifyRs256(decodeJwt(jwt), publicKey)).toBe(true);
    expect(verifyRs256(decodeJwt(jwt), other.publicKey)).toBe(false);
    const [h, , s] = jwt.split(".");
    const forged = `${h}.${Buffer.from('{"iss":"y"}').toString("base64url")}.${s}`;
    expect(verifyRs256(decodeJwt(forged), publicKey)).toBe(false);
  });

  it("HS256 verifies with its secret only; neither verifier accepts the other algorithm", () => {
    const secret = randomBytes(32);
    const hs = signJwt({ a: 1 }, { alg: "HS256", secret });
    expect(verifyHs256(decodeJwt(hs), secret)).toBe(true);
    expect(verifyHs256(decodeJwt(hs), randomBytes(32))).toBe(false);
    expect(verifyRs256(decodeJwt(hs), publicKey)).toBe(false);
    expect(verifyHs256(decodeJwt(signJwt({}, { alg: "RS256", privateKey })), secret)).toBe(false);
  });

  it.each(["", "a.b", "a.b.c.d", "###.e30.c2ln", "e30.e30.", "bm90IGpzb24.e30.c2ln", "W10.e30.c2ln"])(
    "refuses %j as a JwtError",
    (token) => {
      expect(() => decodeJwt(token)).toThrow(JwtError);
    },
  );
});

describe("checkAssertionClaims", () => {
  const now = 1_800_000_000;
  const good = { iss: "abcdefghijklm", sub: "abcdefghijklm", aud: TOKEN_URL, iat: now, exp: now + 300, jti: "j1" };
  const rules = { tokenUrl: TOKEN_URL, nowSeconds: now, skewSeconds: 5 };

  it("accepts the claims authlib sends, also with aud as a one-element array", () => {
    expect(checkAssertionClaims(good, rules)).toEqual({
      ok: true,
      clientId: "abcdefghijklm",
      jti: "j1",
      exp: now + 300,
    });
    expect(checkAssertionClaims({ ...good, aud: [TOKEN_URL] }, rules).ok).toBe(true);
  });

  it.each([
    ["no iss", { iss: undefined }, /iss/],
    ["sub ≠ iss", { sub: "other" }, /sub/],
    ["aud with a trailing slash", { aud: `${TOKEN_URL}/` }, /aud/],
    ["aud as two values", { aud: [TOKEN_URL, "x"] }, /aud/],
    ["exp in the past beyond the skew", { exp: now - 6 }, /expired/],
    ["exp as a string", { exp: String(now + 300) }, /exp/],
    ["iat in the future beyond the skew", { iat: now + 6 }, /iat/],
    ["no iat", { iat: undefined }, /iat/],
    ["an empty jti", { jti: "" }, /jti/],
  ])("refuses %s", (_what, change, reason) => {
    const result = checkAssertionClaims({ ...good, ...change }, rules);
    expect(result.ok).toBe(false);
    expect(result.ok ? "" : result.reason).toMatch(reason);
  });

  it("tolerates a clock difference within the skew", () => {
    expect(checkAssertionClaims({ ...good, iat: now + 4, exp: now - 4 }, rules).ok).toBe(true);
  });
});

describe("keys", () => {
  it("key files: the PEM form is the client id line then the PEM; the JSON form holds a usable JWK", () => {
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const id = randomClientId();
    expect(id).toMatch(/^[a-z0-9]{13}$/);
    const text = pemKeyFileText(id, pem);
    expect(text.split("\n")[0]).toBe(id);
    expect(createPrivateKey(text.slice(id.length + 1)).asymmetricKeyType).toBe("rsa");
    const json = JSON.parse(jwkKeyFileText(id, privateKey.export({ format: "jwk" }))) as {
      client_id: string;
      secret: Record<string, string>;
    };
    expect(json.client_id).toBe(id);
    expect(createPrivateKey({ key: json.secret, format: "jwk" }).asymmetricKeyType).toBe("rsa");
  });

  it("publicKeyFrom takes a public PEM, a private PEM (keeping the public half) or a JWK", () => {
    const spki = publicKey.export({ type: "spki", format: "der" });
    for (const source of [
      publicKey.export({ type: "spki", format: "pem" }).toString(),
      privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      { ...publicKey.export({ format: "jwk" }), kid: "k1" },
    ]) {
      expect(publicKeyFrom(source).export({ type: "spki", format: "der" })).toEqual(spki);
    }
    expect(() => publicKeyFrom({ kty: "EC" })).toThrow(TypeError);
  });
});

describe("paths, routes, redaction", () => {
  const root = "/tmp/d/perlmutter";
  it.each([
    ["//tmp/d/perlmutter/global/x", "/tmp/d/perlmutter/global/x"],
    ["/tmp/d/perlmutter/global/x", "/tmp/d/perlmutter/global/x"],
    ["/%2Ftmp%2Fd%2Fperlmutter%2Fglobal%2Fx", "/tmp/d/perlmutter/global/x"],
    ["//tmp/d/perlmutter/a%20b/./c", "/tmp/d/perlmutter/a b/c"],
  ])("maps %s to %s", (raw, local) => {
    expect(mapSfapiPath(root, raw)).toBe(local);
  });

  it.each([
    "/etc/passwd",
    "/tmp/d/perlmutter/../x",
    "/tmp/d/perlmutter%2F..%2Fx",
    "/tmp/d/perlmutter-other/x",
    "/tmp/d/perlmutter/a%00b",
  ])("refuses %s", (raw) => {
    expect(() => mapSfapiPath(root, raw)).toThrow();
  });

  it("route keys name the endpoint, not the machine or path", () => {
    expect(apiRoute("/utilities/command/perlmutter")).toBe("/utilities/command");
    expect(apiRoute("/utilities/download/perlmutter//tmp/x")).toBe("/utilities/download");
    expect(apiRoute("/tasks/1001")).toBe("/tasks");
    expect(apiRoute("/compute/jobs/perlmutter/40000001")).toBe("/compute/jobs");
    expect(apiRoute("/account/")).toBe("/account");
  });

  it("redacts every credential-like form field and keeps the rest", () => {
    expect(
      redactForm({
        client_assertion: "eyJ...",
        executable: "ls",
        client_secret: "s",
        access_token: "t",
        grant_type: "g",
      }),
    ).toEqual({
      client_assertion: "<redacted>",
      executable: "ls",
      client_secret: "<redacted>",
      access_token: "<redacted>",
      grant_type: "g",
    });
  });

  it("faults: route keys are checked; a path key matches every method; times counts down", () => {
    expect(() => armFault("GET /tasks/1", { kind: "reset" })).toThrow(TypeError);
    expect(() => armFault("POST /utilities/upload", { kind: "slow-task", ms: 1 })).toThrow(TypeError);
    expect(() => armFault("/tasks", { kind: "status", status: 999 })).toThrow(TypeError);
    const armed = armFault("/tasks", { kind: "status", status: 503, times: 1 });
    const req = { method: "DELETE", route: "DELETE /tasks", path: "/api/v1.2/tasks/1", query: {}, form: {} };
    expect(faultMatches(armed, req)).toBe(true);
    expect(faultMatches(armed, { ...req, route: "GET /status" })).toBe(false);
    armed.remaining--;
    expect(faultMatches(armed, req)).toBe(false);
  });
});
