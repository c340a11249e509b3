// The part of ssh2 1.17's API this package uses. ssh2 ships no types and the project's
// lockfile has no @types/ssh2; none of these types is part of this package's public API.
declare module "ssh2" {
  import type { EventEmitter } from "node:events";
  import type { Duplex, Readable } from "node:stream";

  export interface ParsedKey {
    type: string;
    comment: string;
    isPrivateKey(): boolean;
    getPublicSSH(): Buffer;
  }

  export interface KeyboardInteractivePrompt {
    prompt: string;
    echo?: boolean;
  }

  export type AuthMethodAttempt =
    | { type: "none"; username: string }
    | { type: "password"; username: string; password: string }
    | { type: "publickey"; username: string; key: Buffer | string | ParsedKey; passphrase?: string }
    | { type: "agent"; username: string; agent: string }
    | {
        type: "keyboard-interactive";
        username: string;
        prompt: (
          name: string,
          instructions: string,
          lang: string,
          prompts: KeyboardInteractivePrompt[],
          finish: (answers: string[]) => void,
        ) => void;
      };

  export type AuthHandler = (
    methodsLeft: string[] | null,
    partialSuccess: boolean | null,
    next: (attempt: AuthMethodAttempt | false) => void,
  ) => void;

  export interface Algorithms {
    serverHostKey?: string[] | { prepend?: string[]; append?: string[]; remove?: string[] };
  }

  export interface ConnectConfig {
    host?: string;
    port?: number;
    username: string;
    sock?: Duplex;
    privateKey?: Buffer | string;
    readyTimeout?: number;
    keepaliveInterval?: number;
    keepaliveCountMax?: number;
    hostVerifier?: (key: Buffer, verify: (valid: boolean) => void) => boolean | undefined;
    authHandler?: AuthHandler;
    algorithms?: Algorithms;
    debug?: (message: string) => void;
    ident?: string;
  }

  export interface ClientChannel extends Duplex {
    readonly stderr: Readable;
    signal(name: string): boolean | undefined;
    close(): void;
    on(event: "exit", listener: (code: number | null, signal?: string, dumped?: boolean, desc?: string) => void): this;
    on(event: "close", listener: () => void): this;
    on(event: string | symbol, listener: (...args: never[]) => void): this;
    once(
      event: "exit",
      listener: (code: number | null, signal?: string, dumped?: boolean, desc?: string) => void,
    ): this;
    once(event: string | symbol, listener: (...args: never[]) => void): this;
  }

  export interface SftpStats {
    size: number;
    mode: number;
  }

  export interface SftpError extends Error {
    code?: number;
  }

  type SftpCallback<T = void> = (err: SftpError | undefined | null, value: T) => void;

  export interface SFTPWrapper extends EventEmitter {
    open(path: string, flags: string, attrs: { mode?: number }, cb: SftpCallback<Buffer>): void;
    close(handle: Buffer, cb: (err: SftpError | undefined | null) => void): void;
    write(
      handle: Buffer,
      buffer: Buffer,
      offset: number,
      length: number,
      position: number,
      cb: (err: SftpError | undefined | null) => void,
    ): void;
    read(
      handle: Buffer,
      buffer: Buffer,
      offset: number,
      length: number,
      position: number,
      cb: (err: SftpError | undefined | null, bytesRead: number) => void,
    ): void;
    fstat(handle: Buffer, cb: SftpCallback<SftpStats>): void;
    fchmod(handle: Buffer, mode: number, cb: (err: SftpError | undefined | null) => void): void;
    unlink(path: string, cb: (err: SftpError | undefined | null) => void): void;
    /** OpenSSH's `posix-rename@openssh.com`: replaces `newPath` atomically. Throws when unsupported. */
    ext_openssh_rename(oldPath: string, newPath: string, cb: (err: SftpError | undefined | null) => void): void;
    realpath(path: string, cb: SftpCallback<string>): void;
    end(): void;
  }

  export class Client extends EventEmitter {
    connect(config: ConnectConfig): this;
    exec(command: string, cb: (err: Error | undefined, channel: ClientChannel) => void): this;
    sftp(cb: (err: Error | undefined, sftp: SFTPWrapper) => void): this;
    forwardOut(
      srcIP: string,
      srcPort: number,
      dstIP: string,
      dstPort: number,
      cb: (err: Error | undefined, channel: ClientChannel) => void,
    ): this;
    end(): this;
    destroy(): this;
  }

  export const utils: {
    parseKey(data: Buffer | string, passphrase?: string): ParsedKey | ParsedKey[] | Error;
  };

  // ssh2 is CommonJS: Node's ESM loader exposes only its default export.
  const ssh2: { Client: typeof Client; utils: typeof utils };
  export default ssh2;
}
