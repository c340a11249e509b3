import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type SfapiDouble, startSfapiDouble } from "../../src/sfapi-double/index.js";
import { accessToken, api, clientAssertion, filePath, postCommand, runToEnd, tokenRequest } from "./helpers.js";

// Real servers and processes on a shared machine: an explicit budget, never vitest's 5 s default.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The token endpoint, bearer checks, fault injection and the request log, driven with plain
// fetch and assertions signed here with node:crypto. Commands and files:
// sfapi-double-api.integration.test.ts.

let double: SfapiDouble;
const secrets: string[] = [];

beforeAll(async () => {
  double = await startSfapiDouble({
    clients: [{ clientId: "jdoeredclient" }, { clientId: "jdoeyellowcli", color: "yellow" }],
    commandTimeoutMs: 20_000,
  });
});
afterAll(async () => {
  await double.close();
});
afterEach(() => double.clearFaults());

async function token(clientId = "jdoeredclient") {
  const t = await accessToken(double, clientId);
  secrets.push(t);
  return t;
}

describe("token endpoint", () => {
  it("exchanges a valid assertion for a Bearer JWT with exp, usable on the API", async () => {
    const client = double.client("jdoeredclient");
    const assertion = clientAssertion(client.clientId, client.privateKeyPem as string, double.tokenUrl);
    secrets.push(assertion);
    const { res, body } = await tokenRequest(double, assertion);
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 600 });
    const accessTok = body.access_token as string;
    secrets.push(accessTok);
    const claims = JSON.parse(Buffer.from(accessTok.split(".")[1] as string, "base64url").toString()) as Record<
      string,
      unknown
    >;
    expect(claims).toMatchObject({ sub: "jdoeredclient", client_id: "jdoeredclient" });
    expect(claims.exp as number).toBeGreaterThan(Date.now() / 1000 + 590);
    const account = await api(double, "/account/", accessTok);
    expect(account.status).toBe(200);
    expect(await account.json()).toMatchObject({ name: "jdoe" });
  });

  it("accepts the keys of both NERSC key-file forms (id line + PEM, and JSON with a JWK)", async () => {
    const client = double.client("jdoeredclient");
    const [idLine, ...pem] = (client.keyFile as string).split("\n");
    expect(idLine).toBe("jdoeredclient");
    const fromPem = clientAssertion(idLine as string, pem.join("\n"), double.tokenUrl);
    const json = JSON.parse(client.jwkKeyFile as string) as { client_id: string; secret: Record<string, string> };
    const fromJwk = clientAssertion(
      json.client_id,
      createPrivateKey({ key: json.secret, format: "jwk" }),
      double.tokenUrl,
    );
    secrets.push(fromPem, fromJwk);
    expect((await tokenRequest(double, fromPem)).res.status).toBe(200);
    expect((await tokenRequest(double, fromJwk)).res.status).toBe(200);
  });

  const foreignKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
  it.each([
    ["a bad signature (another key)", () => clientAssertion("jdoeredclient", foreignKey, double.tokenUrl), /signature/],
    ["a wrong aud", () => clientAssertion("jdoeredclient", key(), double.baseUrl), /aud/],
    [
      "an expired assertion",
      () => clientAssertion("jdoeredclient", key(), double.tokenUrl, { iat: now() - 900, exp: now() - 600 }),
      /expired/,
    ],
    [
      "an iat in the future",
      () => clientAssertion("jdoeredclient", key(), double.tokenUrl, { iat: now() + 600 }),
      /iat/,
    ],
    ["sub ≠ iss", () => clientAssertion("jdoeredclient", key(), double.tokenUrl, { sub: "someoneelse00" }), /sub/],
    ["an unknown client", () => clientAssertion("unknownclient", key(), double.tokenUrl), /unknown client/],
    ["a missing jti", () => clientAssertion("jdoeredclient", key(), double.tokenUrl, { jti: undefined }), /jti/],
    ["garbage", () => "not.a.jwt", /assertion/],
  ])("refuses %s with 401 invalid_client and a description", async (_what, make, description) => {
    const assertion = make();
    secrets.push(assertion);
    const { res, body } = await tokenRequest(double, assertion);
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toMatch(/application\/json/);
    expect(body.error).toBe("invalid_client");
    expect(body.error_description).toMatch(description);
    expect(body.access_token).toBeUndefined();
  });

  it("refuses a reused jti (a replayed assertion), though it was valid the first time", async () => {
    const assertion = clientAssertion("jdoeredclient", key(), double.tokenUrl);
    secrets.push(assertion);
    expect((await tokenRequest(double, assertion)).res.status).toBe(200);
    const { res, body } = await tokenRequest(double, assertion);
    expect(res.status).toBe(401);
    expect(body).toMatchObject({ error: "invalid_client", error_description: expect.stringMatching(/jti/) });
  });

  it.each([
    ["a wrong grant_type", { grant_type: "password" }, "unsupported_grant_type"],
    ["a wrong client_assertion_type", { client_assertion_type: "urn:x" }, "invalid_request"],
    ["a missing assertion", { client_assertion: "" }, "invalid_request"],
  ])("refuses %s with 400 %s", async (_what, fields, error) => {
    const { res, body } = await tokenRequest(double, clientAssertion("jdoeredclient", key(), double.tokenUrl), fields);
    expect(res.status).toBe(400);
    expect(body.error).toBe(error);
  });

  it("refuses a client_id field that differs from iss, and a revoked or expired client", async () => {
    const mismatch = await tokenRequest(double, clientAssertion("jdoeredclient", key(), double.tokenUrl), {
      client_id: "jdoeyellowcli",
    });
    expect(mismatch.res.status).toBe(401);
    await using other = await startSfapiDouble({ clients: [{}, { expiresAt: Date.now() - 1000 }] });
    const [live, expired] = other.clients as [(typeof other.clients)[0], (typeof other.clients)[0]];
    const tok = await accessToken(other, live.clientId);
    other.revokeClient(live.clientId);
    expect((await api(other, "/account/", tok)).status).toBe(401);
    for (const c of [live, expired]) {
      const { res, body } = await tokenRequest(
        other,
        clientAssertion(c.clientId, c.privateKeyPem as string, other.tokenUrl),
      );
      expect(res.status).toBe(401);
      expect(body.error_description).toMatch(/revoked|expired/);
    }
  });
});

describe("bearer tokens on the API", () => {
  it("answers 401 {detail} without a token, with garbage, and with a token not issued by the double", async () => {
    for (const t of [undefined, "garbage", clientAssertion("jdoeredclient", key(), double.tokenUrl)]) {
      const res = await api(double, "/account/", t);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe("Bearer");
      expect(((await res.json()) as { detail: string }).detail).toEqual(expect.any(String));
    }
  });

  it("answers 401 once the token has expired on the double's clock; a new assertion still works", async () => {
    await using d = await startSfapiDouble({ tokenLifetimeSeconds: 30 });
    const first = await accessToken(d);
    expect((await api(d, "/account/", first)).status).toBe(200);
    d.clock.advance(31_000);
    const res = await api(d, "/account/", first);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ detail: "Token expired" });
    expect(d.requestLog.at(-1)?.auth).toBe("expired");
    // Assertions are checked against real time, so advancing the clock does not stale them.
    expect((await api(d, "/account/", await accessToken(d))).status).toBe(200);
  });

  it("accepts a ready token issued without HTTP until revokeAccessTokens()", async () => {
    const ready = double.issueAccessToken("jdoeredclient");
    secrets.push(ready);
    expect((await api(double, "/account/", ready)).status).toBe(200);
    await using d = await startSfapiDouble();
    const t = d.issueAccessToken(d.client().clientId);
    d.revokeAccessTokens();
    expect((await api(d, "/account/", t)).status).toBe(401);
    expect((await api(d, "/account/", await accessToken(d))).status).toBe(200);
  });

  it("serves /status without a token, with the value set by setMachineStatus", async () => {
    double.setMachineStatus("perlmutter", "unavailable");
    const res = await api(double, "/status/perlmutter", undefined);
    expect(await res.json()).toMatchObject({ name: "perlmutter", status: "unavailable" });
    double.setMachineStatus("perlmutter", "active");
    expect((await api(double, "/status/nosuchmachine", undefined)).status).toBe(404);
  });
});

describe("security levels", () => {
  it("refuses commands from a non-red client with 403 saying a red client is needed; nothing runs", async () => {
    const yellow = await token("jdoeyellowcli");
    const tasksBefore = double.tasks.length;
    const { res, body } = await postCommand(double, yellow, "touch should-not-exist");
    expect(res.status).toBe(403);
    expect((body as unknown as { detail: string }).detail).toMatch(/red/);
    expect(double.tasks.length).toBe(tasksBefore);
    // Files work for the weaker client.
    const ls = await api(double, `/utilities/ls/${filePath("perlmutter", double.homeDir())}`, yellow);
    expect(((await ls.json()) as { status: string }).status).toBe("OK");
  });
});

describe("fault injection", () => {
  it("a 503 burst on the token endpoint, then success; nothing is issued during the burst", async () => {
    double.inject("POST /token", { kind: "status", status: 503, times: 2 });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { res, body } = await tokenRequest(double, clientAssertion("jdoeredclient", key(), double.tokenUrl));
      statuses.push(res.status);
      if (res.status === 503) expect(body.access_token).toBeUndefined();
      else secrets.push(body.access_token as string);
    }
    expect(statuses).toEqual([503, 503, 200]);
  });

  it("429 with Retry-After on a command POST runs nothing", async () => {
    const t = await token();
    double.inject("POST /utilities/command", { kind: "status", status: 429, retryAfterSeconds: 2 });
    const before = double.tasks.length;
    const { res } = await postCommand(double, t, "true");
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("2");
    expect(double.tasks.length).toBe(before);
  });

  it("a reset before processing fails the request; the next one succeeds", async () => {
    const t = await token();
    double.inject("GET /utilities/ls", { kind: "reset" });
    const path = `/utilities/ls/${filePath("perlmutter", double.homeDir())}`;
    await expect(api(double, path, t)).rejects.toThrow();
    expect((await api(double, path, t)).status).toBe(200);
    expect(double.requestLog.filter((e) => e.route === "GET /utilities/ls").map((e) => e.outcome)).toContain("reset");
  });

  it("a reset after processing loses the answer of a command POST that did run (exactly once)", async () => {
    const t = await token();
    double.inject("POST /utilities/command", { kind: "reset", when: "after" });
    await expect(postCommand(double, t, "echo lost-answer-marker")).rejects.toThrow();
    const posted = double.requestLog.filter((e) => e.form.executable === "echo lost-answer-marker");
    expect(posted).toHaveLength(1);
    expect(posted[0]?.outcome).toBe("reset");
    expect(double.tasks.filter((x) => x.executable === "echo lost-answer-marker")).toHaveLength(1);
  });

  it("a slow task stays new longer, then completes", async () => {
    const t = await token();
    double.inject("POST /utilities/command", { kind: "slow-task", ms: 800 });
    const { body } = await postCommand(double, t, "echo slow");
    const view = double.tasks.find((x) => x.id === body.task_id);
    expect(view?.phase).toBe("queued");
    const { result } = await runToEnd(double, t, "echo fast");
    expect(result.output).toBe("fast\n");
  });

  it("refuses a route it does not serve, so a typo cannot arm a fault that never fires", () => {
    expect(() => double.inject("POST /utilities/commands" as "*", { kind: "reset" })).toThrow(TypeError);
  });
});

describe("request log", () => {
  it("records every request with route, form and auth, and holds no assertion, token or key", async () => {
    // Its own traffic, so the test stands alone; the file's earlier tests add theirs.
    const good = clientAssertion("jdoeredclient", key(), double.tokenUrl);
    const bad = clientAssertion("jdoeredclient", key(), double.baseUrl);
    const t = (await tokenRequest(double, good)).body.access_token as string;
    await tokenRequest(double, bad);
    await runToEnd(double, t, "echo logged");
    await api(double, "/account/", `${t}x`);
    secrets.push(good, bad, t, `${t}x`);
    const text = JSON.stringify(double.requestLog);
    for (const s of secrets) expect(text).not.toContain(s);
    for (const c of double.clients) expect(text).not.toContain((c.privateKeyPem as string).split("\n")[1]);
    const tokenEntries = double.requestLog.filter((e) => e.route === "POST /token");
    expect(tokenEntries.every((e) => !e.form.client_assertion || e.form.client_assertion === "<redacted>")).toBe(true);
    expect(tokenEntries.some((e) => e.tokenError === "invalid_client")).toBe(true);
    expect(double.requestLog.some((e) => e.route === "POST /utilities/command" && e.taskId && e.auth === "valid")).toBe(
      true,
    );
  });
});

function key(): string {
  return double.client("jdoeredclient").privateKeyPem as string;
}
function now(): number {
  return Math.floor(Date.now() / 1000);
}
