import { randomBytes } from "node:crypto";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";
import { closeOnce, createClock, listenOnLoopback, makeFileAreas, sharedSettings } from "../double-common.js";
import { ProcessRunner } from "../newt-double/commands.js";
import { dropPendingJobs } from "./api-jobs.js";
import { dropQueuedTasks } from "./api-tasks.js";
import { armFault } from "./faults.js";
import { handle } from "./http.js";
import { generateSfapiKeyPair, jwkKeyFileText, pemKeyFileText, publicKeyFrom, randomClientId } from "./keys.js";
import type { ClientRecord, SfapiState } from "./state.js";
import { issueAccessToken } from "./token.js";
import type { SfapiDouble, SfapiDoubleClient, SfapiDoubleOptions, SfapiJobView, SfapiTaskView } from "./types.js";

const MACHINE_NAME = /^[a-z0-9][a-z0-9_-]*$/;
const USER_NAME = /^[a-z_][a-z0-9_-]*$/;
const API_PREFIX = "/api/v1.2";
const TOKEN_PATH = "/c2id/token";

function registerClients(options: SfapiDoubleOptions): Map<string, ClientRecord> {
  const clients = new Map<string, ClientRecord>();
  for (const c of options.clients ?? [{}]) {
    const clientId = c.clientId ?? randomClientId();
    const username = c.username ?? "jdoe";
    if (clientId.length !== 13)
      throw new TypeError(`sfapi-double: client id ${JSON.stringify(clientId)} must have 13 characters`);
    if (clients.has(clientId)) throw new TypeError(`sfapi-double: client id ${clientId} given twice`);
    if (!USER_NAME.test(username)) throw new TypeError(`sfapi-double: bad user name ${JSON.stringify(username)}`);
    const pair = c.publicKey === undefined ? generateSfapiKeyPair() : undefined;
    const publicKey = publicKeyFrom(c.publicKey ?? (pair?.publicKeyPem as string));
    const view: SfapiDoubleClient = Object.freeze({
      clientId,
      username,
      color: c.color ?? "red",
      expiresAt: c.expiresAt,
      publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
      privateKeyPem: pair?.privateKeyPem,
      privateJwk: pair?.privateJwk,
      keyFile: pair && pemKeyFileText(clientId, pair.privateKeyPem),
      jwkKeyFile: pair && jwkKeyFileText(clientId, pair.privateJwk),
    });
    const given = typeof c.publicKey === "object" ? c.publicKey.kid : undefined;
    const kid = pair ? (pair.publicJwk.kid as string) : typeof given === "string" ? given : undefined;
    clients.set(clientId, { view, publicKey, kid, revoked: false });
  }
  return clients;
}

/**
 * Starts an SFAPI double: a real HTTP server on 127.0.0.1 serving NERSC's token endpoint
 * (`/c2id/token`) and the Superfacility API (`/api/v1.2/…`) per the spec's double section,
 * over real folders and real processes.
 *
 * Homes are real absolute paths (`/tmp/…/perlmutter/global/homes/j/jdoe`), as in the NEWT
 * double: file URLs name them and commands see the very same files — no path translation.
 */
export async function startSfapiDouble(options: SfapiDoubleOptions = {}): Promise<SfapiDouble> {
  const machines = [...(options.machines ?? ["perlmutter"])];
  if (machines.length === 0) throw new TypeError("sfapi-double: at least one machine is needed");
  for (const m of machines) {
    if (!MACHINE_NAME.test(m)) throw new TypeError(`sfapi-double: bad machine name ${JSON.stringify(m)}`);
  }
  const clients = registerClients(options);
  const usernames = [...new Set([...clients.values()].map((c) => c.view.username))];

  const { base, roots, home, ownedDir } = await makeFileAreas("sfapi-double", options.baseDir, machines, usernames);
  const clock = createClock("sfapi-double");
  const server = createServer();
  const origin = `http://127.0.0.1:${await listenOnLoopback(server, options.port ?? 0)}`;

  const st: SfapiState = {
    machines,
    roots,
    machineStatus: new Map(machines.map((m) => [m, "active"] as const)),
    clients,
    clock,
    requestLog: [],
    tasks: new Map(),
    runner: new ProcessRunner(),
    tokenSecret: randomBytes(32),
    seenJti: new Map(),
    tokensValidFrom: 0,
    jobs: new Map(),
    nextJob: 40_000_001,
    jobPendingMs: nonNegative(options.jobPendingMs ?? 0, "jobPendingMs"),
    jobCacheMs: nonNegative(options.jobCacheMs ?? 0, "jobCacheMs"),
    faults: [],
    seq: 0,
    nextTask: 1001,
    taskDelayMs: nonNegative(options.taskDelayMs ?? 0, "taskDelayMs"),
    closed: false,
    apiPrefix: API_PREFIX,
    tokenPath: TOKEN_PATH,
    tokenUrl: `${origin}${TOKEN_PATH}`,
    tokenLifetimeSeconds: nonNegative(options.tokenLifetimeSeconds ?? 600, "tokenLifetimeSeconds"),
    assertionSkewSeconds: nonNegative(options.assertionSkewSeconds ?? 5, "assertionSkewSeconds"),
    missingExecutable: options.missingExecutable ?? "exit-127",
    partialResults: options.partialResults ?? true,
    maxDownloadBytes: options.maxDownloadBytes ?? 64 * 1024 * 1024,
    ...sharedSettings(options),
    home,
  };
  server.on("request", (req, res) => {
    handle(st, req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ detail: `sfapi-double internal error: ${(err as Error).message}` }));
      }
    });
  });

  const clientOf = (idOrUsername?: string): ClientRecord => {
    const all = [...clients.values()];
    const found =
      idOrUsername === undefined
        ? all[0]
        : (clients.get(idOrUsername) ?? all.find((c) => c.view.username === idOrUsername));
    if (!found) throw new TypeError(`sfapi-double: no client ${JSON.stringify(idOrUsername)}`);
    return found;
  };
  const machineOf = (machine = machines[0] as string) => {
    if (!roots.has(machine)) throw new TypeError(`sfapi-double: unknown machine ${JSON.stringify(machine)}`);
    return machine;
  };

  const close = closeOnce(
    server,
    () => {
      // Queued tasks and pending jobs must not start once the double is closing.
      st.closed = true;
      dropQueuedTasks(st);
      dropPendingJobs(st);
      return st.runner.close();
    },
    ownedDir,
  );

  return {
    baseUrl: `${origin}${API_PREFIX}`,
    tokenUrl: st.tokenUrl,
    machines,
    clients: [...clients.values()].map((c) => c.view),
    client: (idOrUsername) => clientOf(idOrUsername).view,
    rootDir: (machine) => roots.get(machineOf(machine)) as string,
    homeDir(username = clientOf().view.username, machine) {
      if (!usernames.includes(username)) throw new TypeError(`sfapi-double: unknown user ${JSON.stringify(username)}`);
      return home(username, machineOf(machine));
    },
    async writeKeyFile(clientId, form = "pem") {
      const c = clientOf(clientId).view;
      const text = form === "pem" ? c.keyFile : c.jwkKeyFile;
      if (text === undefined) throw new TypeError(`sfapi-double: the double does not hold ${clientId}'s private key`);
      const dir = join(base, "keys");
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const path = join(dir, `${c.clientId}.${form === "pem" ? "pem" : "json"}`);
      await writeFile(path, text, { mode: 0o600 });
      await chmod(path, 0o600);
      return path;
    },
    issueAccessToken: (clientId, lifetimeSeconds = st.tokenLifetimeSeconds) =>
      issueAccessToken(st, clientOf(clientId), lifetimeSeconds),
    revokeAccessTokens() {
      st.tokensValidFrom = clock.now() + 1;
    },
    revokeClient(clientId) {
      clientOf(clientId).revoked = true;
    },
    setMachineStatus(machine, status) {
      st.machineStatus.set(machineOf(machine), status);
    },
    setTaskDelay(ms) {
      st.taskDelayMs = nonNegative(ms, "taskDelayMs");
    },
    requestLog: st.requestLog,
    get tasks(): SfapiTaskView[] {
      return [...st.tasks.values()].map((t) => ({ ...t.view }));
    },
    get jobs(): SfapiJobView[] {
      return [...st.jobs.values()].map(({ id, machine, username, name, argv, state, exitCode, pid }) => ({
        id,
        machine,
        username,
        name,
        argv,
        state,
        exitCode,
        pid,
      }));
    },
    get runningCommands() {
      return st.runner.size;
    },
    inject(route, fault) {
      st.faults.push(armFault(route, fault));
    },
    clearFaults() {
      st.faults = [];
    },
    clock,
    close,
    [Symbol.asyncDispose]: close,
  };
}

function nonNegative(value: number, name: string): number {
  if (!(Number.isFinite(value) && value >= 0)) throw new TypeError(`sfapi-double: ${name} must be >= 0, got ${value}`);
  return value;
}
