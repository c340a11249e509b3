/**
 * What an SFAPI client does, written out with node:crypto and fetch only — independent of
 * the double's own JWT code, so a bug there cannot hide behind a shared helper.
 */
import { createPrivateKey, type KeyObject, randomUUID, sign } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { SfapiDouble } from "../../src/sfapi-double/index.js";

export const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

const b64u = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A client assertion as authlib builds it (RS256; iss = sub = client id; aud = token URL). */
export function clientAssertion(
  clientId: string,
  key: string | KeyObject,
  aud: string,
  claims: Record<string, unknown> = {},
): string {
  const now = Math.floor(Date.now() / 1000);
  const payload = { iss: clientId, sub: clientId, aud, iat: now, exp: now + 300, jti: randomUUID(), ...claims };
  const input = `${b64u({ alg: "RS256", typ: "JWT" })}.${b64u(payload)}`;
  const privateKey = typeof key === "string" ? createPrivateKey(key) : key;
  return `${input}.${sign("sha256", Buffer.from(input), privateKey).toString("base64url")}`;
}

/** POSTs a token request; `fields` override the standard form. */
export async function tokenRequest(double: SfapiDouble, assertion: string, fields: Record<string, string> = {}) {
  const res = await fetch(double.tokenUrl, {
    method: "POST",
    headers: { accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_assertion_type: ASSERTION_TYPE,
      client_assertion: assertion,
      ...fields,
    }),
  });
  return { res, body: (await res.json()) as Record<string, unknown> };
}

/** A fresh access token for `clientId` (whose private key the double holds). */
export async function accessToken(double: SfapiDouble, clientId?: string): Promise<string> {
  const client = double.client(clientId);
  const { res, body } = await tokenRequest(
    double,
    clientAssertion(client.clientId, client.privateKeyPem as string, double.tokenUrl),
  );
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token as string;
}

export function api(double: SfapiDouble, path: string, token: string | undefined, init: RequestInit = {}) {
  const headers = new Headers(init.headers);
  headers.set("accept", "application/json");
  if (token !== undefined) headers.set("authorization", `Bearer ${token}`);
  return fetch(`${double.baseUrl}${path}`, { ...init, headers });
}

/** `{machine}/` + the absolute path, each segment percent-encoded: `perlmutter//tmp/…`, as the official client. */
export const filePath = (machine: string, abs: string) =>
  `${machine}/${abs.split("/").map(encodeURIComponent).join("/")}`;

export async function postCommand(double: SfapiDouble, token: string, executable: string, machine = "perlmutter") {
  const res = await api(double, `/utilities/command/${machine}`, token, {
    method: "POST",
    body: new URLSearchParams({ executable }),
  });
  return { res, body: (await res.json()) as { task_id: string | null; status: string; error: string | null } };
}

export interface TaskAnswer {
  id: string;
  status: string;
  result: string | null;
}

export async function getTask(double: SfapiDouble, token: string, id: string): Promise<TaskAnswer> {
  const res = await api(double, `/tasks/${id}`, token);
  if (res.status !== 200) throw new Error(`GET /tasks/${id}: ${res.status}`);
  return (await res.json()) as TaskAnswer;
}

/** Polls until `done(task)` or 15 s (bounded), every 20 ms. */
export async function pollTask(
  double: SfapiDouble,
  token: string,
  id: string,
  done: (t: TaskAnswer) => boolean = (t) => t.status !== "new",
): Promise<TaskAnswer> {
  for (let i = 0; i < 750; i++) {
    const task = await getTask(double, token, id);
    if (done(task)) return task;
    await sleep(20);
  }
  throw new Error(`task ${id} did not reach the awaited state`);
}

/** Waits (bounded, 15 s) until the double's view of a task satisfies `ok`. */
export async function waitForTaskView(double: SfapiDouble, id: string, ok: (phase: string) => boolean) {
  for (let i = 0; i < 750; i++) {
    const view = double.tasks.find((t) => t.id === id);
    if (view && ok(view.phase)) return view;
    await sleep(20);
  }
  throw new Error(`task ${id} never reached the awaited phase`);
}

/** Runs a command to its end and returns the parsed result. */
export async function runToEnd(double: SfapiDouble, token: string, executable: string) {
  const { body } = await postCommand(double, token, executable);
  if (body.status !== "OK" || body.task_id === null) throw new Error(`command refused: ${JSON.stringify(body)}`);
  const task = await pollTask(double, token, body.task_id);
  return {
    task,
    result: JSON.parse(task.result as string) as {
      status: string;
      output: string;
      error: string | null;
      exit_code: number;
    },
  };
}

/** True once process group `pgid` has no process left (polled, bounded: 2 s; a killed child is reaped asynchronously). */
export async function processGroupGone(pgid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return true;
    }
    await sleep(20);
  }
  return false;
}
