import { setMaxListeners } from "node:events";
import type {
  Connector,
  ConnectorCapabilities,
  ConnectorStatus,
  ExecOptions,
  ExecResult,
  PutFileOptions,
  RemoteProcess,
} from "./connector.js";
import { type Deadline, deadline, type OperationOptions, raceSignal } from "./deadline.js";
import {
  ConnectorError,
  type ConnectorErrorCode,
  hasErrorCode,
  type SremoteErrorOptions,
  UsageError,
} from "./errors.js";
import { deleteByCommand, execWithStdinFile, type FallbackTransport, homeDirByCommand } from "./fallbacks.js";
import { checkArgv, checkData, checkExecOptions, checkMode, checkPath } from "./validation.js";

/**
 * What a connector implements: its transport. Every method gets input already checked
 * and one {@link Deadline} (caller's `signal` + `timeoutMs` + the connector's close) to
 * honour; throw {@link ConnectorError}s for transport failures. Only `name`,
 * `capabilities`, `putFile`, `getFile` and `exec` are required.
 */
export interface ConnectorDefinition<Extra extends object = Record<never, never>> {
  /** Short name prefixing every message (`"ssh"`). */
  name: string;
  /** What this instance can do; `spawn` must be true exactly when {@link spawn} is given. */
  capabilities: ConnectorCapabilities;
  /** Opens the connection. Default: nothing to open. */
  connect?(dl: Deadline): Promise<void>;
  /** Reports the connection (see `runtime.closed`); must not throw. Default: tries `connect`. */
  status?(options: OperationOptions): Promise<ConnectorStatus>;
  /** The home folder. Default: `/bin/pwd` after `cd` through `exec`; cached once known. */
  homeDir?(dl: Deadline): Promise<string>;
  /** Writes a whole file with `mode`; a missing parent is `FILE_NOT_FOUND`. */
  putFile(path: string, data: Uint8Array, mode: number, dl: Deadline): Promise<void>;
  /**
   * Writes a private temporary file (stdin emulation) inside a 0700 folder, where its mode
   * need not be set; a missing folder is `FILE_NOT_FOUND`. Default: `putFile` with `0o600`.
   */
  putTempFile?(path: string, data: Uint8Array, dl: Deadline): Promise<void>;
  /** Reads a whole file; missing is `FILE_NOT_FOUND`. */
  getFile(path: string, dl: Deadline): Promise<Uint8Array>;
  /** Deletes a file, a missing one being success. Default: `rm -f --` through `exec`. */
  deleteFile?(path: string, dl: Deadline): Promise<void>;
  /** Deletes many files at once. Default: one `rm -f --` (or `deleteFile` per path when given). */
  deleteFiles?(paths: readonly string[], dl: Deadline): Promise<void>;
  /**
   * Runs a command to completion. Receives `stdin` only when {@link streamsStdin} is not
   * false; otherwise core sends stdin through an uploaded file.
   */
  exec(argv: readonly string[], options: ExecOptions, dl: Deadline): Promise<ExecResult>;
  /** False when `exec` cannot feed stdin: core uploads it to a temp file (see {@link tempDir}). Default true. */
  streamsStdin?: boolean | undefined;
  /** Remote folder for stdin files (default `~/.sremote/tmp`, created 0700 when missing). */
  tempDir?: string | undefined;
  /** Starts a command with live streams; `dl` bounds the start only. */
  spawn?(argv: readonly string[], options: Omit<ExecOptions, "stdin">, dl: Deadline): Promise<RemoteProcess>;
  /**
   * Ends everything the transport started and releases it. Called once; its synchronous
   * part runs before pending operations see the close signal.
   */
  close?(): Promise<void>;
  /** Extra read-only members of the connector (`settings`, `machine`…), copied with their getters. */
  extra?: Extra | undefined;
}

/** What core gives a definition: the state and helpers every transport would otherwise repeat. */
export interface ConnectorRuntime {
  /** True once `close()` was called. */
  readonly closed: boolean;
  /** Fires when `close()` is called; every operation's deadline includes it. */
  readonly closeSignal: AbortSignal;
  /**
   * Runs `fn` as one operation: `CLOSED` after close, one deadline for `options`, the
   * deadline's `TIMEOUT`/`ABORTED` error when it fired, `CLOSED` when close() ended it.
   */
  run<T>(what: string, options: OperationOptions | undefined, fn: (dl: Deadline) => Promise<T>): Promise<T>;
  /** A {@link ConnectorError} prefixed with the connector's name. */
  error(
    code: ConnectorErrorCode,
    message: string,
    options?: SremoteErrorOptions & { details?: Record<string, unknown> },
  ): ConnectorError;
  /** `rm -f --` through the transport's `exec`: for a transport whose own delete may decline. */
  deleteByCommand(paths: readonly string[], dl: Deadline): Promise<void>;
}

class DefinedConnector implements Connector {
  readonly name: string;
  readonly capabilities: ConnectorCapabilities;
  spawn?: Connector["spawn"];
  readonly #def: ConnectorDefinition;
  readonly #close = new AbortController();
  readonly #fallback: FallbackTransport;
  #closing: Promise<void> | undefined;
  #home: Promise<string> | undefined;

  constructor(build: (runtime: ConnectorRuntime) => ConnectorDefinition<object>) {
    // Every pending operation listens to the close signal: any number is expected.
    setMaxListeners(0, this.#close.signal);
    const self = this;
    const runtime: ConnectorRuntime = {
      get closed() {
        return self.#closing !== undefined;
      },
      closeSignal: this.#close.signal,
      run: (what, options, fn) => this.#run(what, options, fn),
      error: (code, message, options) => new ConnectorError(code, this.name, message, options),
      deleteByCommand: (paths, dl) => deleteByCommand(this.#fallback, paths, dl),
    };
    const def = build(runtime);
    if (typeof def?.name !== "string" || def.name === "") throw new UsageError("defineConnector: name is required");
    for (const m of ["putFile", "getFile", "exec"] as const) {
      if (typeof def[m] !== "function") throw new UsageError(`defineConnector: ${def.name}: ${m}() is required`);
    }
    if (Boolean(def.capabilities?.spawn) !== (typeof def.spawn === "function")) {
      throw new UsageError(
        `defineConnector: ${def.name}: capabilities.spawn must be true exactly when spawn() is given`,
      );
    }
    this.#def = def;
    this.name = def.name;
    this.capabilities = Object.isFrozen(def.capabilities) ? def.capabilities : Object.freeze({ ...def.capabilities });
    const putTemp = def.putTempFile;
    this.#fallback = {
      name: def.name,
      exec: (argv, options, dl) => def.exec(argv, options, dl),
      putTempFile: putTemp
        ? (path, data, dl) => putTemp.call(def, path, data, dl)
        : (path, data, dl) => def.putFile(path, data, 0o600, dl),
      homeDir: (dl) => this.#homeDir(dl),
      tempDir: def.tempDir,
      closeSignal: this.#close.signal,
    };
    const spawn = def.spawn;
    if (spawn) {
      this.spawn = async (argv, options = {}) => {
        checkArgv(this.name, argv);
        checkExecOptions(this.name, options);
        return this.#run(`spawn ${argv[0]}`, options, (dl) => spawn.call(def, argv, options, dl));
      };
    }
    if (def.extra) Object.defineProperties(this, Object.getOwnPropertyDescriptors(def.extra));
  }

  async #run<T>(what: string, options: OperationOptions | undefined, fn: (dl: Deadline) => Promise<T>): Promise<T> {
    const label = `${this.name}: ${what}`;
    if (this.#closing) throw new ConnectorError("CLOSED", this.name, `${what}: the connector is closed`);
    const dl = deadline(options, this.#close.signal);
    try {
      dl.throwIfDone(label);
      return await fn(dl);
    } catch (err) {
      if (this.#closing) {
        if (hasErrorCode(err, "CLOSED")) throw err;
        throw new ConnectorError("CLOSED", this.name, `${what}: the connector was closed`, { cause: err });
      }
      if (dl.signal.aborted && !hasErrorCode(err, "TIMEOUT") && !hasErrorCode(err, "ABORTED")) throw dl.error(label);
      throw err;
    } finally {
      dl.dispose();
    }
  }

  /** The home folder, asked once and shared; a failed question is asked again next time. */
  #homeDir(dl: Deadline): Promise<string> {
    if (!this.#home) {
      const asked = this.#def.homeDir ? this.#def.homeDir(dl) : homeDirByCommand(this.#fallback, dl);
      this.#home = asked;
      asked.catch(() => {
        if (this.#home === asked) this.#home = undefined;
      });
    }
    return raceSignal(this.#home, dl.signal);
  }

  connect(options?: OperationOptions): Promise<void> {
    return this.#run("connect", options, async (dl) => {
      await this.#def.connect?.(dl);
    });
  }

  async status(options: OperationOptions = {}): Promise<ConnectorStatus> {
    if (this.#def.status) return this.#def.status(options);
    if (this.#closing) return { connected: false, detail: `${this.name}: closed` };
    try {
      await this.connect(options);
      return { connected: true, detail: this.name };
    } catch (err) {
      return { connected: false, detail: (err as Error).message, info: { error: (err as { code?: string }).code } };
    }
  }

  homeDir(options?: OperationOptions): Promise<string> {
    return this.#run("homeDir", options, (dl) => this.#homeDir(dl));
  }

  // async methods: bad input rejects like every other failure instead of throwing.
  async putFile(path: string, data: Uint8Array, options: PutFileOptions = {}): Promise<void> {
    checkPath(this.name, path);
    checkData(this.name, data);
    const mode = options.mode ?? 0o600;
    checkMode(this.name, mode);
    return this.#run(`putFile ${path}`, options, (dl) => this.#def.putFile(path, data, mode, dl));
  }

  async getFile(path: string, options?: OperationOptions): Promise<Uint8Array> {
    checkPath(this.name, path);
    return this.#run(`getFile ${path}`, options, (dl) => this.#def.getFile(path, dl));
  }

  async deleteFile(path: string, options?: OperationOptions): Promise<void> {
    checkPath(this.name, path);
    return this.#run(`deleteFile ${path}`, options, (dl) => {
      const { deleteFile, deleteFiles } = this.#def;
      if (deleteFile) return deleteFile.call(this.#def, path, dl);
      if (deleteFiles) return deleteFiles.call(this.#def, [path], dl);
      return deleteByCommand(this.#fallback, [path], dl);
    });
  }

  async deleteFiles(paths: readonly string[], options?: OperationOptions): Promise<void> {
    if (!Array.isArray(paths)) throw new UsageError(`${this.name}: deleteFiles needs an array of paths`);
    for (const path of paths) checkPath(this.name, path);
    return this.#run(`deleteFiles (${paths.length} files)`, options, async (dl) => {
      if (paths.length === 0) return;
      const { deleteFile, deleteFiles } = this.#def;
      if (deleteFiles) return deleteFiles.call(this.#def, paths, dl);
      if (!deleteFile) return deleteByCommand(this.#fallback, paths, dl);
      for (const path of paths) await deleteFile.call(this.#def, path, dl);
    });
  }

  async exec(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    checkArgv(this.name, argv);
    checkExecOptions(this.name, options);
    return this.#run(`exec ${argv[0]}`, options, (dl) => {
      const { stdin } = options;
      if (stdin !== undefined && this.#def.streamsStdin === false) {
        return execWithStdinFile(this.#fallback, argv, options, stdin, dl);
      }
      return this.#def.exec(argv, options, dl);
    });
  }

  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = Promise.resolve(); // `closed` is true while the transport closes
      // Its synchronous part runs now, before pending operations see the close signal; a
      // throw becomes the rejection of close().
      const closing = (async () => this.#def.close?.())();
      this.#close.abort();
      this.#closing = closing;
    }
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Builds a {@link Connector} from a transport, unstorage-style: the definition implements
 * a few required methods and core supplies the rest — argv/path/mode/env checks, one
 * deadline per operation (`signal`, `timeoutMs`, close), `CLOSED` after `close()`, an
 * idempotent `close()` and `Symbol.asyncDispose`, and fallbacks built on `exec`
 * (`homeDir`, `deleteFile`, `deleteFiles`, stdin through an uploaded file).
 *
 * `build` runs once per connector, so capabilities may differ between instances.
 *
 * @example
 * ```ts
 * export function myConnector(options: MyOptions): Connector {
 *   return defineConnector((runtime) => ({
 *     name: "mine",
 *     capabilities: { spawn: false, stdin: true, signals: true, fileModes: true },
 *     putFile: (path, data, mode, dl) => …,
 *     getFile: (path, dl) => …,
 *     exec: (argv, options, dl) => …,
 *   }));
 * }
 * ```
 *
 * @throws UsageError (`INVALID_ARGUMENT`) for a definition that misses a required method or
 *   declares `spawn` without implementing it.
 */
export function defineConnector<Extra extends object = Record<never, never>>(
  build: (runtime: ConnectorRuntime) => ConnectorDefinition<Extra>,
): Connector & Readonly<Extra> & { deleteFiles: NonNullable<Connector["deleteFiles"]> } {
  return new DefinedConnector(build) as unknown as Connector &
    Readonly<Extra> & { deleteFiles: NonNullable<Connector["deleteFiles"]> };
}
