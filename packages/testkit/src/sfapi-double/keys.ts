/** Test key pairs and the two key-file forms NERSC's own client reads. */
import { createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject, randomInt } from "node:crypto";

/** An RSA key pair for an SFAPI test client, in every form a connector may be given. */
export interface SfapiKeyPair {
  /** PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). */
  privateKeyPem: string;
  /** SPKI PEM (`-----BEGIN PUBLIC KEY-----`). */
  publicKeyPem: string;
  /** The private key as a JWK (`kty: "RSA"`, with `kid`). */
  privateJwk: JsonWebKey;
  /** The public half as a JWK (with the same `kid`). */
  publicJwk: JsonWebKey;
}

/** Generates a 2048-bit RSA key pair (what Iris hands out), with a random `kid` on its JWKs. */
export function generateSfapiKeyPair(): SfapiKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = randomClientId();
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    privateJwk: { ...privateKey.export({ format: "jwk" }), kid },
    publicJwk: { ...publicKey.export({ format: "jwk" }), kid },
  };
}

const ID_CHARS = "abcdefghijklmnopqrstuvwxyz0234567";

/** A random 13-character client id (sfapi_client refuses other lengths). */
export function randomClientId(): string {
  let id = "";
  for (let i = 0; i < 13; i++) id += ID_CHARS.charAt(randomInt(ID_CHARS.length));
  return id;
}

/** NERSC's PEM key-file form (`~/.superfacility/<name>.pem`): the client id on line 1, then the PEM. */
export function pemKeyFileText(clientId: string, privateKeyPem: string): string {
  return `${clientId}\n${privateKeyPem.endsWith("\n") ? privateKeyPem : `${privateKeyPem}\n`}`;
}

/** NERSC's JSON key-file form: `{"client_id": "...", "secret": <private JWK>}`. */
export function jwkKeyFileText(clientId: string, privateJwk: JsonWebKey): string {
  return `${JSON.stringify({ client_id: clientId, secret: privateJwk }, null, 2)}\n`;
}

/** A public key object from a PEM (public or private: only the public half is kept) or a JWK. */
export function publicKeyFrom(key: string | JsonWebKey): KeyObject {
  if (typeof key === "string") return createPublicKey(key);
  const { kty, n, e, kid } = key;
  if (kty !== "RSA" || typeof n !== "string" || typeof e !== "string") {
    throw new TypeError(`sfapi-double: client public key JWK must be RSA with n and e${kid ? ` (kid ${kid})` : ""}`);
  }
  return createPublicKey({ key: { kty, n, e }, format: "jwk" });
}
