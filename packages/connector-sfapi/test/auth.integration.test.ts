import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expectCode } from "@sremote/testkit";
import { type SfapiDouble, startSfapiDouble } from "@sremote/testkit/sfapi-double";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { sfapiConnector } from "../src/index.js";
import { connectorFactory, MACHINE, since } from "./helpers.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

let double: SfapiDouble;
const make = connectorFactory(() => double);

beforeAll(async () => {
  double = await startSfapiDouble({
    tokenLifetimeSeconds: 2,
    clients: [{ username: "jdoe" }, { username: "jdoe", color: "yellow" }, { username: "jdoe" }],
  });
});
afterAll(async () => {
  await double?.close();
});

const tokenRequests = (from: number) => since(double, from).filter((e) => e.route === "POST /token");

describe("access tokens", () => {
  it("renews a short-lived token between two operations without the caller noticing", async () => {
    const c = make();
    const from = double.requestLog.length;
    expect((await c.exec(["echo", "one"])).stdout).toBe("one\n");
    // The double's tokens live 2 s; the connector renews a quarter of a lifetime early.
    await new Promise((r) => setTimeout(r, 1_700));
    expect((await c.exec(["echo", "two"])).stdout).toBe("two\n");
    const log = since(double, from);
    expect(tokenRequests(from)).toHaveLength(2);
    expect(log.filter((e) => e.status === 401)).toEqual([]);
  });

  it("renews once after a 401 (the server's clock ran past the token) and repeats the request", async () => {
    const c = make();
    await c.exec(["true"]);
    const from = double.requestLog.length;
    double.clock.advance(10_000);
    expect((await c.exec(["echo", "after"])).stdout).toBe("after\n");
    const log = since(double, from);
    expect(log.filter((e) => e.status === 401).length).toBeGreaterThanOrEqual(1);
    expect(tokenRequests(from)).toHaveLength(1);
    // The refused POST ran nothing; the repeated one ran the command once.
    expect(double.tasks.filter((t) => t.executable.includes("after"))).toHaveLength(1);
  });

  it("uses a ready access token as is, and reports AUTH_FAILED when it is refused", async () => {
    const c = make({ accessToken: double.issueAccessToken(double.client().clientId, 600) });
    const from = double.requestLog.length;
    expect((await c.exec(["echo", "ready"])).stdout).toBe("ready\n");
    expect(tokenRequests(from)).toHaveLength(0);
    double.revokeAccessTokens();
    const err = await expectCode(c.exec(["true"]), "AUTH_FAILED");
    expect(err.message).toMatch(/not renewed/);
    expect(tokenRequests(from)).toHaveLength(0);
  });

  it("explains a non-red client's 403: command execution needs a red client", async () => {
    const yellow = double.clients[1];
    const c = make({ clientId: yellow?.clientId, privateKey: yellow?.privateKeyPem });
    const err = await expectCode(c.exec(["true"]), "AUTH_FAILED");
    expect(err.message).toMatch(/red SFAPI client/);
    expect(err.message).toMatch(/security level yellow/);
    // Files work for every color.
    await c.putFile(join(double.homeDir(), "yellow.txt"), new TextEncoder().encode("y"), { mode: 0o644 });
  });

  it("fails at once, without retries, for a wrong key and a revoked client", async () => {
    const [a, , b] = double.clients;
    const wrong = make({ clientId: a?.clientId, privateKey: b?.privateKeyPem });
    let from = double.requestLog.length;
    const err = await expectCode(wrong.exec(["true"]), "AUTH_FAILED");
    expect(err.message).toMatch(/invalid_client/);
    expect((err as { retryable?: boolean }).retryable).toBe(false);
    expect(tokenRequests(from)).toHaveLength(1);
    // Remembered: no second assertion for a refused client.
    await expectCode(wrong.getFile("/x"), "AUTH_FAILED");
    expect(tokenRequests(from)).toHaveLength(1);

    const revokedClient = make({ clientId: b?.clientId, privateKey: b?.privateKeyPem });
    double.revokeClient(b?.clientId as string);
    from = double.requestLog.length;
    const revoked = await expectCode(revokedClient.connect(), "AUTH_FAILED");
    expect(revoked.message).toMatch(/revoked/);
    expect(tokenRequests(from)).toHaveLength(1);
  });

  it("reads both key-file forms: client id line + PEM, and JSON with a JWK", async () => {
    const id = double.client().clientId;
    for (const form of ["pem", "json"] as const) {
      const keyFile = await double.writeKeyFile(id, form);
      const c = make({ keyFile });
      expect((await c.exec(["echo", form])).stdout).toBe(`${form}\n`);
    }
  });

  it("refuses unreadable or malformed key files and bad options with INVALID_ARGUMENT, never echoing the key", async () => {
    const pem = double.client().privateKeyPem as string;
    const noId = join(double.rootDir(), "noid.pem");
    await writeFile(noId, pem, { mode: 0o600 });
    const base = { machine: MACHINE, apiUrl: double.baseUrl, tokenUrl: double.tokenUrl };
    for (const opts of [
      { ...base, keyFile: noId },
      { ...base, keyFile: join(double.rootDir(), "missing.pem") },
      { ...base, clientId: "abc", privateKey: pem.replace(/[A-Z]/g, "x") },
      { ...base, clientId: double.client().clientId },
      { ...base, keyFile: noId, accessToken: "t" },
      { ...base, apiUrl: "http://example.org/api", accessToken: "t" },
    ]) {
      let caught: unknown;
      try {
        sfapiConnector(opts);
      } catch (err) {
        caught = err;
      }
      expect((caught as { code?: string })?.code).toBe("INVALID_ARGUMENT");
      expect(String((caught as Error).message)).not.toMatch(/PRIVATE KEY|MII/);
    }
  });

  it("never puts the key, the assertion or the token in an error, and status() reports the user", async () => {
    const c = make();
    expect((await c.status()).connected).toBe(true);
    expect((await c.status()).info?.username).toBe("jdoe");
    // Every command POST answered 503, the questions too: whether it ran cannot be told.
    double.inject("POST /utilities/command", { kind: "status", status: 503, times: Number.POSITIVE_INFINITY });
    const err = await expectCode(c.exec(["echo", "x"]), "UNAVAILABLE").finally(() => double.clearFaults());
    const text = JSON.stringify({ m: err.message, d: (err as { details?: unknown }).details, s: String(err.stack) });
    expect(text).not.toMatch(/PRIVATE KEY|eyJ[A-Za-z0-9_-]{10,}/);
  });
});
