import {
  assertEnv,
  type Connector,
  ConnectorError,
  discoverLayout,
  hasErrorCode,
  type Launcher,
  type OperationOptions,
  type RemoteLayout,
  UsageError,
} from "@sremote/core";
import type { AgentInfo, CallMessage, ProbeMessage, ResultMessage } from "@sremote/protocol";
import { LearnedPython } from "./agent-command.js";
import { assertTimeout, buildCallMessage, IDENT_PATH, type Registrations } from "./call-message.js";
import { execError, toCallResult } from "./call-result.js";
import { EarlySession, ensureAgent } from "./endpoint-agent.js";
import { clientFileCarrier, type FileCarrier, randomCallId } from "./file-carrier.js";
import { type LauncherLifecycle, launcherFor, trackedCall } from "./launcher-lifecycle.js";
import { type Logger, silentLogger } from "./logger.js";
import { type MapOptions, type MapResult, mapCalls } from "./map.js";
import type { CallMode, CallOptions, CallResult, RemoteClientOptions } from "./options.js";
import { createModuleProxy, isKwargs, type ModuleProxy } from "./proxy.js";
import { checkRequirements, parseRequirement, type Requirement } from "./requirements.js";
import { createSessionPool, type SessionPool, startSessionAgent } from "./session-pool.js";

/**
 * Calls Python functions on a remote machine through a {@link Connector}.
 *
 * ```ts
 * await using client = new RemoteClient({ connector: localConnector() });
 * const { value } = await client.call("math", "sqrt", [2]);
 * ```
 */
export class RemoteClient {
  readonly connector: Connector;
  readonly #options: RemoteClientOptions;
  readonly #logger: Logger;
  readonly #registrations: Registrations = { env: {}, envDefault: {}, pathAppend: [], requirements: [] };
  #ready: Promise<RemoteLayout> | undefined;
  #layout: RemoteLayout | undefined;
  #pool: SessionPool | undefined;
  /** A session agent started beside the first agent-file check, until the pool takes it. */
  #early: EarlySession | undefined;
  #fileCarrier: FileCarrier | undefined;
  #agentInfo: AgentInfo | undefined;
  readonly #requirementChecks = new Map<string, Promise<void>>();
  /** Requirement sets already checked, by carrier: the hot path skips `#prepare` with them. */
  readonly #requirementsPassed = new Set<string>();
  #layoutReady = false;
  #sequence = 0;
  readonly #sessionPrefix = randomCallId().slice(0, 8);
  #closing: Promise<void> | undefined;
  readonly #launcher: Launcher | undefined;
  /** Present for a launcher with a lifecycle (prepare, release or invalidate). */
  readonly #lifecycle: LauncherLifecycle | undefined;
  #fileSlot = 0;
  /** The first agent's interpreter, for later starts when no `python` was given. */
  readonly #learnedPython = new LearnedPython();

  constructor(options: RemoteClientOptions) {
    if (!options || typeof options !== "object" || !options.connector) {
      throw new UsageError("RemoteClient needs a connector: new RemoteClient({ connector })");
    }
    for (const key of ["poolSize", "workersPerSession", "maxInFlightPerSession"] as const) {
      const v = options[key];
      if (v !== undefined && (!Number.isInteger(v) || v < 1))
        throw new UsageError(`${key} must be a positive integer, got ${v}`);
    }
    if (options.mode !== undefined && !["auto", "session", "file"].includes(options.mode)) {
      throw new UsageError(`mode must be "auto", "session" or "file", got ${JSON.stringify(options.mode)}`);
    }
    assertTimeout(options.timeoutMs);
    if (options.layout !== undefined) assertLayout(options.layout);
    this.connector = options.connector;
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    if (options.layout) this.#layout = options.layout;
    const stopAgents = () => this.#pool?.retireAll(options.cancelGraceMs ?? 2_000) ?? Promise.resolve();
    ({ launcher: this.#launcher, lifecycle: this.#lifecycle } = launcherFor(options, this.#logger, stopAgents));
  }

  // ---- registrations (the seed's register_remote_*) -------------------------------------

  /**
   * Sets an environment variable on the remote for every call; with `onlyIfUnset`, only
   * where the remote environment does not define it already.
   */
  registerEnv(name: string, value: string, options: { onlyIfUnset?: boolean } = {}): this {
    assertEnv({ [name]: value }, "registerEnv");
    const target = options.onlyIfUnset ? this.#registrations.envDefault : this.#registrations.env;
    const other = options.onlyIfUnset ? this.#registrations.env : this.#registrations.envDefault;
    delete other[name];
    target[name] = value;
    return this;
  }

  /** Appends a folder to the remote `PATH` (and to a venv's saved `_OLD_VIRTUAL_PATH`) for every call. */
  registerPath(dir: string): this {
    if (typeof dir !== "string" || dir === "" || dir.includes("\0") || dir.includes(":")) {
      throw new UsageError(`registerPath: ${JSON.stringify(dir)} is not a usable PATH entry`);
    }
    if (!this.#registrations.pathAppend.includes(dir)) this.#registrations.pathAppend.push(dir);
    return this;
  }

  /**
   * Requires a module on the remote: `registerModule("numpy>=1.20")` or
   * `registerModule("qdo", ">=0.5")`. The name may be an import name or a distribution
   * name. Checked before the first call; an unmet requirement rejects calls with
   * `RemoteModulesError` naming module, wanted and found.
   */
  registerModule(requirement: string, specifier?: string): this {
    const req = parseRequirement(requirement, specifier);
    const list = this.#registrations.requirements;
    const i = list.findIndex((r) => r.name === req.name);
    if (i >= 0) list[i] = req;
    else list.push(req);
    return this;
  }

  // ---- calls ---------------------------------------------------------------------------

  /**
   * Calls `module.function(*args, **kwargs)` on the remote machine.
   *
   * @param args positional arguments (an array) or keyword arguments (a plain object).
   * @throws RemoteExecError the function could not be imported/found, raised, or returned
   *   something unserializable. RemoteModulesError, RemoteNotSetupError, ConnectorError,
   *   ProtocolError, TimeoutError, AbortError, UsageError otherwise.
   */
  async call<T = unknown>(
    module: string,
    fn: string,
    args: readonly unknown[] | Record<string, unknown> = [],
    options: CallOptions = {},
  ): Promise<CallResult<T>> {
    if (this.#closing) throw new ConnectorError("CLOSED", this.connector.name, "the client is closed");
    const message = buildCallMessage(this.#nextId(), module, fn, args, options, this.#registrations);
    const carrier = this.#carrierFor(options.mode ?? this.#options.mode ?? "auto");
    if (!this.#lifecycle) return this.#call<T>(module, fn, message, carrier, options);
    return trackedCall(this.#lifecycle, carrier, () => this.#call<T>(module, fn, message, carrier, options));
  }

  /**
   * Calls `module.fn` once per input, at most `concurrency` at a time, spread over the
   * session pool (`poolSize` sessions; through a launcher, its slots). Each input is what
   * {@link RemoteClient.call} takes as `args` (an array, which may end with `kw({...})`, or a
   * plain object of keyword arguments). Yields one {@link MapResult} per input, in input
   * order — a failing input never ends the batch; inputs are read lazily and memory is
   * bounded by `concurrency`; abort: see {@link MapOptions.signal}. Breaking out of the loop
   * aborts the calls still running.
   *
   * ```ts
   * for await (const r of client.map("math", "sqrt", [[1], [4], [9]], { concurrency: 8 })) {
   *   console.log(r.index, r.ok ? r.value : r.error.message);
   * }
   * ```
   */
  map<T = unknown>(
    module: string,
    fn: string,
    inputs: Iterable<unknown> | AsyncIterable<unknown>,
    options: MapOptions = {},
  ): AsyncIterable<MapResult<T>> {
    const call = (args: readonly unknown[] | Record<string, unknown>, o: CallOptions) =>
      this.call<T>(module, fn, args, o);
    return mapCalls<T>(call, inputs, options, Math.max(2, 2 * this.slots));
  }

  async #call<T>(
    module: string,
    fn: string,
    message: CallMessage,
    carrier: "session" | "file",
    options: CallOptions,
  ): Promise<CallResult<T>> {
    const started = performance.now();
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs;
    const op = { signal: options.signal, timeoutMs, onOutput: options.onOutput };
    if (!this.#prepared(carrier)) await this.#prepare(carrier, op);
    let result: ResultMessage;
    if (carrier === "session") {
      result = await (this.#pool as SessionPool).request(message, op);
    } else {
      const fileMessage = { ...message, id: randomCallId(), stream: undefined };
      result = await this.#runFile(fileMessage, op);
      if (options.onOutput) {
        if (result.stdout) options.onOutput("stdout", result.stdout);
        if (result.stderr) options.onOutput("stderr", result.stderr);
      }
    }
    // A file-carrier call's facts leave out numpy (only a probe looks it up): merge, so a
    // version an earlier probe reported stays known.
    if (result.agent) this.#agentInfo = { ...this.#agentInfo, ...result.agent };
    return toCallResult<T>(`${module}.${fn}`, result, carrier, started, this.#registrations.requirements);
  }

  /**
   * A proxy over a remote module: calling an attribute path calls that function remotely.
   * With a type, results are typed: `client.module<QdoApi>("qdo").valid_queue_name("x")`
   * resolves to the return value. Without one, every attribute path is callable and resolves
   * to `unknown` (`await client.module("os").path.join("a", "b")`); under
   * `noUncheckedIndexedAccess` such attributes are possibly `undefined` to TypeScript, so
   * give the module a type there (or use {@link RemoteClient.call}). Pass keyword arguments
   * with `kw({...})` as the last argument.
   */
  module<T = Record<string, unknown>>(name: string, options: Omit<CallOptions, "kwargs"> = {}): ModuleProxy<T> {
    if (!IDENT_PATH.test(name)) throw new UsageError(`invalid module name ${JSON.stringify(name)}`);
    return createModuleProxy<T>(async (fn, callArgs) => {
      const last = callArgs[callArgs.length - 1];
      const kwargs = isKwargs(last) ? last.values : undefined;
      const positional = kwargs ? callArgs.slice(0, -1) : callArgs;
      const r = await this.call(name, fn, positional, { ...options, kwargs });
      return r.value;
    });
  }

  /**
   * Resolves the layout, installs the agent when needed and checks the registered
   * requirements — what the first call would do. Returns the agent's facts when a session
   * was started (session carrier), else what is known.
   */
  async connect(
    options: OperationOptions & { mode?: CallMode } = {},
  ): Promise<{ layout: RemoteLayout; agent: AgentInfo | undefined }> {
    const carrier = this.#carrierFor(options.mode ?? this.#options.mode ?? "auto");
    if (this.#lifecycle) return trackedCall(this.#lifecycle, carrier, () => this.#connect(carrier, options));
    return this.#connect(carrier, options);
  }

  async #connect(
    carrier: "session" | "file",
    options: OperationOptions,
  ): Promise<{ layout: RemoteLayout; agent: AgentInfo | undefined }> {
    await this.#prepare(carrier, options);
    if (carrier === "session" && !this.#agentInfo) {
      const r = await (this.#pool as SessionPool).request(
        { v: 1, kind: "probe", id: this.#nextId(), requires: [] },
        options,
      );
      this.#agentInfo = r.agent ?? (this.#pool as SessionPool).sessions()[0]?.info;
    }
    return { layout: this.#layout as RemoteLayout, agent: this.#agentInfo };
  }

  /** The layout in use (after the first call or `connect()`). */
  get layout(): RemoteLayout | undefined {
    return this.#layout;
  }

  /** Facts of the agent last heard from. */
  get agent(): AgentInfo | undefined {
    return this.#agentInfo;
  }

  /** Calls this client runs at once when busy, `poolSize × workersPerSession`: `map`'s unit of concurrency. */
  get slots(): number {
    return (this.#options.poolSize ?? 1) * (this.#options.workersPerSession ?? 1);
  }

  /** Number of live agent sessions. */
  get sessionCount(): number {
    return this.#pool?.size ?? 0;
  }

  /**
   * Ends every session (running calls get `graceMs`, default 5 000, to finish), removes the
   * file carrier's temp files, and closes the connector unless `closeConnector` is false.
   * Idempotent.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closing ??= (async () => {
      const graceMs = options.graceMs ?? 5_000;
      // Running file-carrier calls finish (or are stopped) and their temp files are deleted
      // before the connector closes.
      this.#early?.discard();
      await Promise.all([this.#pool?.close(graceMs), this.#fileCarrier?.close(graceMs)]);
      // The agents are gone: give the launcher's resources back while the connector is open.
      await this.#lifecycle?.release();
      if (this.#options.closeConnector !== false) await this.connector.close();
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- internals -----------------------------------------------------------------------

  /** A file-carrier run: the launcher prepares first (each file-carrier call starts an agent). */
  async #runFile(message: CallMessage | ProbeMessage, op: OperationOptions): Promise<ResultMessage> {
    if (this.#lifecycle) await this.#lifecycle.prepare(op);
    const launcher = this.#launcher;
    if (!launcher?.explainExit) return (this.#fileCarrier as FileCarrier).run(message, op);
    try {
      return await (this.#fileCarrier as FileCarrier).run(message, op);
    } catch (err) {
      // An agent that ended without answering: the launcher may know why (its job was ended).
      const stderr = hasErrorCode(err, "CONNECTION_LOST") ? (err as ConnectorError).details?.stderr : undefined;
      throw (typeof stderr === "string" && launcher.explainExit(stderr)) || err;
    }
  }

  /** True when nothing is left to do before a call on `carrier` (the per-call fast path). */
  #prepared(carrier: "session" | "file"): boolean {
    if (!this.#layoutReady || (carrier === "session" ? !this.#pool : !this.#fileCarrier)) return false;
    if (carrier === "session" && this.#lifecycle && !this.#lifecycle.held) return false;
    const reqs = this.#registrations.requirements;
    return reqs.length === 0 || this.#requirementsPassed.has(this.#requirementKey(carrier, reqs));
  }

  #requirementKey(carrier: "session" | "file", reqs: readonly Requirement[]): string {
    return `${carrier}:${reqs.map((r) => `${r.name}${r.specifier}`).join(";")}`;
  }

  #nextId(): string {
    return `${this.#sessionPrefix}-${++this.#sequence}`;
  }

  #carrierFor(mode: CallMode): "session" | "file" {
    if (mode === "file") return "file";
    const canSpawn = this.connector.capabilities.spawn && typeof this.connector.spawn === "function";
    if (mode === "session") {
      if (!canSpawn) {
        throw new UsageError(`the ${this.connector.name} connector cannot spawn processes: use mode "file" or "auto"`);
      }
      return "session";
    }
    if (mode !== "auto") throw new UsageError(`mode must be "auto", "session" or "file", got ${JSON.stringify(mode)}`);
    return canSpawn ? "session" : "file";
  }

  /** Layout, agent files, carrier objects and requirements: everything before a call. */
  async #prepare(carrier: "session" | "file", op: OperationOptions): Promise<void> {
    if (!this.#ready) {
      this.#ready = this.#setUp(op, carrier);
      this.#ready.catch(() => {
        this.#ready = undefined; // let the next call try again
      });
    }
    const layout = await this.#ready;
    this.#layoutReady = true;
    if (carrier === "session" && !this.#pool)
      this.#pool = createSessionPool({
        ...this.#poolFacts(),
        layout,
        lifecycle: this.#lifecycle,
        early: this.#early,
      });
    if (carrier === "file" && !this.#fileCarrier) {
      const nextFileSlot = () => this.#fileSlot++ % (this.#options.poolSize ?? 1);
      this.#fileCarrier = clientFileCarrier({ ...this.#poolFacts(), layout, nextFileSlot });
    }
    // Session agents start in the pool, whose starts prepare too; this one carries the
    // call's deadline (an allocation may be pending for long).
    if (carrier === "session" && this.#lifecycle && !this.#lifecycle.held) await this.#lifecycle.prepare(op);
    const reqs = this.#registrations.requirements;
    if (reqs.length > 0) {
      const key = this.#requirementKey(carrier, reqs);
      let check = this.#requirementChecks.get(key);
      if (!check) {
        check = this.#checkRequirements(carrier, reqs, op).then(() => {
          this.#requirementsPassed.add(key);
        });
        this.#requirementChecks.set(key, check);
        check.catch(() => this.#requirementChecks.delete(key));
      }
      await check;
    }
  }

  async #checkRequirements(carrier: "session" | "file", reqs: Requirement[], op: OperationOptions): Promise<void> {
    const requires = reqs.map((r) => r.name);
    const result =
      carrier === "session"
        ? await (this.#pool as SessionPool).request({ v: 1, kind: "probe", id: this.#nextId(), requires }, op)
        : await this.#runFile({ v: 1, kind: "probe", id: randomCallId(), requires }, op);
    if (!result.ok) throw execError("probe", result);
    checkRequirements(reqs, result.modules ?? {});
  }

  async #setUp(op: OperationOptions, carrier: "session" | "file"): Promise<RemoteLayout> {
    const layout = this.#layout ?? (await discoverLayout(this.connector, op)).layout;
    this.#layout = layout;
    if (this.#options.autoInstallAgent === false) return layout;
    // A session agent starts beside the manifest read (no launcher: its start may allocate).
    this.#early =
      carrier === "session" && !this.#pool && !this.#launcher && this.connector.spawn
        ? new EarlySession((signal) => startSessionAgent({ ...this.#poolFacts(), layout }, signal, 0))
        : undefined;
    await ensureAgent(this.connector, layout, this.#options.agentDir, this.#logger, op, this.#early);
    return layout;
  }

  #poolFacts() {
    const [options, logger, launcher, learnedPython] = [
      this.#options,
      this.#logger,
      this.#launcher,
      this.#learnedPython,
    ];
    return { options, connector: this.connector, logger, launcher, learnedPython };
  }
}

/** A given layout names all three folders (a partial one would fail later, as a bad argv word). */
function assertLayout(layout: RemoteLayout): void {
  if (!layout || typeof layout !== "object") throw new UsageError("layout must be an object");
  for (const key of ["endpointDir", "tmpDir", "workDir"] as const) {
    const v = layout[key];
    if (typeof v !== "string" || v === "" || v.includes("\0")) {
      throw new UsageError(
        `layout.${key} must be a non-empty path, got ${JSON.stringify(v)}: give endpointDir, tmpDir and workDir, or leave layout out to have them discovered`,
      );
    }
  }
}
