import type {
  Connector,
  ConnectorStatus,
  ExecOptions,
  ExecResult,
  OperationOptions,
  PutFileOptions,
  RemoteProcess,
} from "@sremote/core";

/** How many connector operations an install used. A second, unchanged install has `uploads: 0`. */
export interface OperationCounts {
  /** `putFile` calls. */
  uploads: number;
  /** Bytes uploaded. */
  uploadBytes: number;
  /** `getFile` calls. */
  downloads: number;
  /** `deleteFile` calls. */
  deletes: number;
  /** `exec` and `spawn` calls (remote commands started). */
  commands: number;
}

/** Fresh zero counts. */
export function zeroCounts(): OperationCounts {
  return { uploads: 0, uploadBytes: 0, downloads: 0, deletes: 0, commands: 0 };
}

/**
 * A decorator that counts the operations made through it and otherwise passes everything to
 * `inner` unchanged. Closing it does not close `inner` (the caller owns the connection).
 */
export function countingConnector(
  inner: Connector,
  counts: OperationCounts = zeroCounts(),
): Connector & { counts: OperationCounts } {
  const wrapped: Connector & { counts: OperationCounts } = {
    name: inner.name,
    capabilities: inner.capabilities,
    counts,
    connect: (o?: OperationOptions) => inner.connect(o),
    close: async () => {},
    status: (o?: OperationOptions): Promise<ConnectorStatus> => inner.status(o),
    homeDir: (o?: OperationOptions) => inner.homeDir(o),
    async putFile(path: string, data: Uint8Array, o?: PutFileOptions) {
      counts.uploads += 1;
      counts.uploadBytes += data.byteLength;
      await inner.putFile(path, data, o);
    },
    getFile(path: string, o?: OperationOptions) {
      counts.downloads += 1;
      return inner.getFile(path, o);
    },
    deleteFile(path: string, o?: OperationOptions) {
      counts.deletes += 1;
      return inner.deleteFile(path, o);
    },
    exec(argv: readonly string[], o?: ExecOptions): Promise<ExecResult> {
      counts.commands += 1;
      return inner.exec(argv, o);
    },
    async [Symbol.asyncDispose]() {},
  };
  if (inner.spawn) {
    const spawn = inner.spawn.bind(inner);
    wrapped.spawn = (argv: readonly string[], o?: Omit<ExecOptions, "stdin">): Promise<RemoteProcess> => {
      counts.commands += 1;
      return spawn(argv, o);
    };
  }
  return wrapped;
}
