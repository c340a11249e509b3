import { createPrivateKey, type JsonWebKey, type KeyObject, randomUUID, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { UsageError } from "@sremote/core";

/** A client's identity as read from a key file or given directly. Holds the private key: never log it. */
export interface ClientKey {
  clientId: string;
  key: KeyObject;
  /** `kid` of a JWK key, sent in the assertion's header. */
  kid: string | undefined;
}

function bad(message: string): never {
  throw new UsageError(`sfapi: ${message}`);
}

function checkClientId(id: unknown, where: string): string {
  if (typeof id !== "string" || !/^[A-Za-z0-9_-]{4,64}$/.test(id)) {
    bad(`${where}: the client id must be a short token of letters and digits (Iris gives 13 characters)`);
  }
  return id;
}

/** Turns a PEM or a JWK (object or JSON text) into a private key, without echoing it in errors. */
export function privateKeyFrom(key: string | JsonWebKey, where: string): { key: KeyObject; kid: string | undefined } {
  let jwk: JsonWebKey | undefined;
  if (typeof key === "string") {
    const t = key.trim();
    if (t.startsWith("{")) {
      try {
        jwk = JSON.parse(t) as JsonWebKey;
      } catch {
        bad(`${where}: the key looks like JSON but does not parse`);
      }
    } else {
      try {
        const k = createPrivateKey({ key: t, format: "pem" });
        if (k.asymmetricKeyType !== "rsa") bad(`${where}: SFAPI keys are RSA keys, got ${k.asymmetricKeyType}`);
        return { key: k, kid: undefined };
      } catch (err) {
        if (err instanceof UsageError) throw err;
        bad(`${where}: not a readable PEM private key`);
      }
    }
  } else {
    jwk = key;
  }
  if (!jwk || typeof jwk !== "object" || jwk.kty !== "RSA" || typeof jwk.d !== "string") {
    bad(`${where}: a JWK private key must be RSA with its private part ("kty": "RSA", "d")`);
  }
  try {
    const k = createPrivateKey({ key: jwk, format: "jwk" });
    return { key: k, kid: typeof jwk.kid === "string" ? jwk.kid : undefined };
  } catch {
    bad(`${where}: the JWK is not a usable RSA private key`);
  }
}

/**
 * Parses an SFAPI key file in either form NERSC's own client reads: the client id on the
 * first line followed by the PEM, or JSON `{"client_id": "…", "secret": <JWK>}`.
 */
export function parseKeyFile(text: string, where: string): ClientKey {
  const t = text.replace(/^\uFEFF/, "").trim();
  if (t.startsWith("{")) {
    let parsed: { client_id?: unknown; secret?: unknown };
    try {
      parsed = JSON.parse(t) as typeof parsed;
    } catch {
      bad(`${where}: JSON key file does not parse`);
    }
    const clientId = checkClientId(parsed.client_id, `${where}: "client_id"`);
    const secret = parsed.secret;
    if (typeof secret !== "string" && (typeof secret !== "object" || secret === null)) {
      bad(`${where}: JSON key file needs a "secret" holding the private key (a JWK)`);
    }
    return { clientId, ...privateKeyFrom(secret as string | JsonWebKey, where) };
  }
  const newline = t.indexOf("\n");
  const first = (newline < 0 ? t : t.slice(0, newline)).trim();
  if (first.startsWith("-----BEGIN")) {
    bad(`${where}: the first line must be the client id, then the PEM (NERSC's key-file form)`);
  }
  const clientId = checkClientId(first, `${where}: first line`);
  return { clientId, ...privateKeyFrom(t.slice(newline + 1), where) };
}

/** Reads and parses a key file; says which file is wrong, never what is in it. */
export function readKeyFile(path: string): ClientKey {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    bad(`cannot read the key file ${path} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  return parseKeyFile(text, `key file ${path}`);
}

/**
 * A `private_key_jwt` client assertion (RFC 7523) as authlib builds it for sfapi_client:
 * RS256, `iss` = `sub` = client id, `aud` = the token URL exactly, `iat`, `exp` = iat + 300,
 * a fresh random `jti` (the server refuses a replay).
 */
export function clientAssertion(client: ClientKey, tokenUrl: string, nowMs = Date.now()): string {
  const iat = Math.floor(nowMs / 1000);
  const header: Record<string, string> = { alg: "RS256", typ: "JWT" };
  if (client.kid !== undefined) header.kid = client.kid;
  const claims = { iss: client.clientId, sub: client.clientId, aud: tokenUrl, iat, exp: iat + 300, jti: randomUUID() };
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const input = `${enc(header)}.${enc(claims)}`;
  return `${input}.${sign("sha256", Buffer.from(input), client.key).toString("base64url")}`;
}
