import { type CallResult, hasErrorCode, type RemoteClient, type RemoteExecError } from "@sremote/client";

/** How one flow ended. `skipped`: it needs QDO and QDO is not there. */
export type FlowStatus = "ok" | "unexpected" | "skipped";

/** One line of the report and one row of the timing table. */
export interface FlowRecord {
  /** Which of the original's flows this is. */
  flow: string;
  /** The remote call, as Python would spell it. */
  call: string;
  status: FlowStatus;
  /** What came back (or what went wrong). */
  detail: string;
  /** Round trip seen by the client, `null` for a skipped flow. */
  ms: number | null;
}

/** What the flows need. */
export interface FlowContext {
  client: RemoteClient;
  /** True when QDO was installed (or found) in the endpoint. */
  qdo: boolean;
  /**
   * A second client on the same connector and endpoint: registering a requirement is
   * client-wide, so the modules-error flow gets its own.
   */
  otherClient(): RemoteClient;
  /** Receives each record as it is made (printing as we go). */
  report(record: FlowRecord): void;
}

/** The value `os.getenv` should return for each name after the registrations. */
export interface EnvExpectations {
  myVar: string;
  homeDefault: string;
  homeBDefault: string;
  pathEntry: string;
}

export const ENV: EnvExpectations = {
  myVar: "myValue",
  homeDefault: "/sremote/registered/home",
  homeBDefault: "/sremote/registered/home_b",
  pathEntry: "/opt",
};

const show = (v: unknown) => JSON.stringify(v) ?? String(v);

/** The last entries of a long PATH, enough to see what was appended. */
const tail = (path: string) => {
  const entries = path.split(":");
  return entries.length > 3 ? `…:${entries.slice(-3).join(":")}` : path;
};

const isError = (err: unknown): err is Error & { code?: unknown } => err instanceof Error;

/** Runs one call and turns its outcome into a record via `judge`. */
async function attempt<T>(
  ctx: FlowContext,
  flow: string,
  call: string,
  run: () => Promise<CallResult<T>>,
  judge: (outcome: { value: T } | { error: unknown }) => { ok: boolean; detail: string },
): Promise<FlowRecord> {
  const t0 = performance.now();
  let outcome: { value: T } | { error: unknown };
  try {
    outcome = { value: (await run()).value };
  } catch (error) {
    outcome = { error };
  }
  const ms = performance.now() - t0;
  let verdict: { ok: boolean; detail: string };
  if ("error" in outcome && !isExpectedKind(outcome.error)) {
    verdict = { ok: false, detail: `failed: ${describeError(outcome.error)}` };
  } else {
    verdict = judge(outcome);
  }
  const record: FlowRecord = { flow, call, status: verdict.ok ? "ok" : "unexpected", detail: verdict.detail, ms };
  ctx.report(record);
  return record;
}

/** Errors a flow may expect; anything else (transport, timeout) is always a failure. */
function isExpectedKind(err: unknown): boolean {
  return hasErrorCode(err, "REMOTE_EXEC") || hasErrorCode(err, "MODULES");
}

function describeError(err: unknown): string {
  if (!isError(err)) return String(err);
  const first = err.message.split("\n")[0] ?? err.message;
  return `${err.name}${typeof err.code === "string" ? ` [${err.code}]` : ""}: ${first}`;
}

/** A record for a flow that needs QDO when QDO is absent. */
function skipped(ctx: FlowContext, flow: string, call: string): FlowRecord {
  const record: FlowRecord = { flow, call, status: "skipped", detail: "needs QDO", ms: null };
  ctx.report(record);
  return record;
}

function expectValue<T>(
  test: (value: T) => boolean,
  describe: (value: T) => string,
): (outcome: { value: T } | { error: unknown }) => { ok: boolean; detail: string } {
  return (outcome) => {
    if ("error" in outcome) return { ok: false, detail: `failed: ${describeError(outcome.error)}` };
    const ok = test(outcome.value);
    return { ok, detail: `${ok ? "" : "unexpected: "}${describe(outcome.value)}` };
  };
}

/** Expects a `RemoteExecError` of one kind (`import`, `attribute`, `exception`). */
function expectExec(kind: RemoteExecError["kind"]) {
  return (outcome: { value: unknown } | { error: unknown }) => {
    if (!("error" in outcome)) return { ok: false, detail: `unexpected success: ${show(outcome.value)}` };
    const err = outcome.error as RemoteExecError;
    const ok = hasErrorCode(err, "REMOTE_EXEC") && err.kind === kind;
    return {
      ok,
      detail: `${ok ? "expected " : `unexpected (wanted RemoteExecError kind=${kind}): `}${err.name} [${err.code}] kind=${err.kind} ${err.type}: ${err.remoteMessage}`,
    };
  };
}

/** Expects a `RemoteModulesError` naming `module` as not installed. */
function expectModules(module: string) {
  return (outcome: { value: unknown } | { error: unknown }) => {
    if (!("error" in outcome)) return { ok: false, detail: `unexpected success: ${show(outcome.value)}` };
    const err = outcome.error as Error & { code: string; problems?: { module: string; found: string | null }[] };
    const ok =
      hasErrorCode(err, "MODULES") && (err.problems ?? []).some((p) => p.module === module && p.found === null);
    return {
      ok,
      detail: `${ok ? "expected " : "unexpected (wanted RemoteModulesError): "}${err.name} [${err.code}]: ${err.message}`,
    };
  };
}

/** `qdo.valid_queue_name` with positional and with keyword arguments (the original's first flows). */
export async function queueNameFlows(ctx: FlowContext): Promise<FlowRecord[]> {
  const flow = "valid_queue_name";
  const listCall = `qdo.valid_queue_name(*["juanito"])`;
  const dictCall = `qdo.valid_queue_name(**{"name": "juanito!"})`;
  if (!ctx.qdo) return [skipped(ctx, `${flow}, list`, listCall), skipped(ctx, `${flow}, dict`, dictCall)];
  return [
    await attempt(
      ctx,
      `${flow}, list`,
      listCall,
      () => ctx.client.call("qdo", "valid_queue_name", ["juanito"]),
      expectValue<unknown>(
        (v) => Boolean(v),
        (v) => `${show(v)} (a valid queue name)`,
      ),
    ),
    await attempt(
      ctx,
      `${flow}, dict`,
      dictCall,
      () => ctx.client.call("qdo", "valid_queue_name", { name: "juanito!" }),
      expectValue<unknown>(
        (v) => !v,
        (v) => `${show(v)} ("!" is not allowed in a queue name)`,
      ),
    ),
  ];
}

/**
 * The three error kinds. Without QDO, the first two use stand-ins with the same failure
 * (a module that does not exist, a function a stdlib module lacks); the third needs QDO.
 */
export async function errorFlows(ctx: FlowContext): Promise<FlowRecord[]> {
  const records: FlowRecord[] = [];
  const standIn = ctx.qdo ? "" : " (stand-in, no QDO)";
  const missingModule = ctx.qdo ? "random_module" : "no_such_module_xyz";
  const missingFunction = ctx.qdo ? { module: "qdo", fn: "random_method" } : { module: "math", fn: "no_such_function" };

  records.push(
    await attempt(
      ctx,
      `unknown module${standIn}`,
      `${missingModule}.valid_queue_name(**{"name": "juanito"})`,
      () => ctx.client.call(missingModule, "valid_queue_name", { name: "juanito" }),
      expectExec("import"),
    ),
  );
  // The original's modules error: the module is required, so the client refuses the call.
  const other = ctx.otherClient();
  try {
    await other.connect(); // its agent starts here, so the time below is the check alone
    other.registerModule(missingModule);
    records.push(
      await attempt(
        ctx,
        `unknown module, required${standIn}`,
        `${missingModule}.valid_queue_name(**{"name": "juanito"})`,
        () => other.call(missingModule, "valid_queue_name", { name: "juanito" }),
        expectModules(missingModule),
      ),
    );
  } finally {
    await other.close();
  }
  records.push(
    await attempt(
      ctx,
      `unknown function${standIn}`,
      `${missingFunction.module}.${missingFunction.fn}(**{"name": "juanito"})`,
      () => ctx.client.call(missingFunction.module, missingFunction.fn, { name: "juanito" }),
      expectExec("attribute"),
    ),
  );
  const connectCall = `qdo.connect(**{"queue_name": "random_queue"})`;
  if (!ctx.qdo) {
    records.push(skipped(ctx, "remote exception", connectCall));
  } else {
    records.push(
      await attempt(
        ctx,
        "remote exception",
        connectCall,
        () => ctx.client.call("qdo", "connect", { queue_name: "random_queue" }),
        expectExec("exception"),
      ),
    );
  }
  return records;
}

/**
 * Registered environment: a plain `myVar`, defaults for `HOME` (set remotely, so kept) and
 * `HOME_B` (unset, so set), and `/opt` appended to `PATH`, each read back with `os.getenv`.
 * The remote's own values are read first, so the expectations are exact.
 */
export async function environmentFlows(ctx: FlowContext): Promise<FlowRecord[]> {
  const { client } = ctx;
  const getenv = (name: string) => () => client.call<string | null>("os", "getenv", [name]);
  const records: FlowRecord[] = [];
  const before: Record<string, string | null | undefined> = {};
  for (const name of ["HOME", "HOME_B", "PATH"]) {
    records.push(
      await attempt(ctx, "environment, before", `os.getenv("${name}")`, getenv(name), (outcome) => {
        if ("error" in outcome) return { ok: false, detail: `failed: ${describeError(outcome.error)}` };
        before[name] = outcome.value;
        const value = name === "PATH" && outcome.value ? tail(outcome.value) : outcome.value;
        return { ok: true, detail: `${show(value)} (the remote's own, nothing registered yet)` };
      }),
    );
  }

  client.registerEnv("myVar", ENV.myVar);
  client.registerEnv("HOME", ENV.homeDefault, { onlyIfUnset: true });
  client.registerEnv("HOME_B", ENV.homeBDefault, { onlyIfUnset: true });
  client.registerPath(ENV.pathEntry);

  // Each variable read back: [flow, name, is the value right?, what to print].
  const homeBefore = before.HOME;
  const homeBBefore = before.HOME_B;
  const pathBefore = before.PATH ?? "";
  const checks: [string, string, (v: string | null) => boolean, (v: string | null) => string][] = [
    ["env myVar", "myVar", (v) => v === ENV.myVar, (v) => `myVar=${show(v)}`],
    [
      "envDefault HOME",
      "HOME",
      (v) => (homeBefore ? v === homeBefore : v === ENV.homeDefault),
      (v) =>
        `HOME=${show(v)} (${v === ENV.homeDefault ? "set: it was unset remotely" : "kept: the remote's own HOME wins"})`,
    ],
    [
      "envDefault HOME_B",
      "HOME_B",
      (v) => (homeBBefore ? v === homeBBefore : v === ENV.homeBDefault),
      (v) =>
        `HOME_B=${show(v)} (${v === ENV.homeBDefault ? "set: it was unset remotely" : "kept: it was set remotely"})`,
    ],
    [
      "PATH addition",
      "PATH",
      (v) => {
        const entries = (v ?? "").split(":");
        return entries.includes(ENV.pathEntry) && (v === pathBefore || entries.at(-1) === ENV.pathEntry);
      },
      (v) =>
        `PATH=${show(tail(v ?? ""))} (${ENV.pathEntry} ${(v ?? "").split(":").includes(ENV.pathEntry) ? "present" : "missing"})`,
    ],
  ];
  for (const [flow, name, ok, detail] of checks) {
    records.push(
      await attempt(ctx, flow, `os.getenv("${name}")`, getenv(name), expectValue<string | null>(ok, detail)),
    );
  }
  return records;
}
