import { ConnectorError, raceSignal, type SremoteError } from "@sremote/core";
import type { SshLogger } from "./options.js";

/** What the pool needs from a connection. */
export interface PoolConnection {
  readonly id: number;
  readonly alive: boolean;
  onLost(fn: (error: SremoteError) => void): () => void;
  close(): Promise<void>;
}

/** A channel slot on one connection; release it when the channel has closed. */
export interface ChannelSlot<C extends PoolConnection> {
  readonly connection: C;
  /** The channel opened: counts towards what the server is known to allow at once. */
  opened(): void;
  /** Gives the slot back (idempotent). */
  release(): void;
  /**
   * The server refused to open this channel: its real limit (`MaxSessions`) is lower
   * than our cap — the cap drops to the channels it holds for us (at least the most ever
   * seen open at once) — or it has not yet freed a channel that just closed. Either way
   * nothing ran, and true says "queue again". False when the connection holds and held
   * no other channel (the refusal has another cause). Gives the slot back either way.
   */
  refused(): boolean;
}

interface Entry<C> {
  connection: C;
  /** Slots handed out (channels opening or open). */
  active: number;
  /** Channels confirmed open, and the most ever open at once. */
  established: number;
  peak: number;
  capacity: number;
}

interface Waiter<C extends PoolConnection> {
  resolve(slot: ChannelSlot<C>): void;
  reject(error: unknown): void;
  cleanup(): void;
}

/** Options of {@link ConnectionPool}. */
export interface PoolOptions {
  maxConnections: number;
  maxChannelsPerConnection: number;
  logger?: SshLogger | undefined;
  /** How long to wait before opening another connection after one failed to open while others work. */
  growthBackoffMs?: number;
}

/**
 * Connections to one host, each with a channel cap (the server's `MaxSessions`).
 * Channel requests beyond the caps wait in arrival order (urgent ones — kills — first);
 * when every connection is full the pool opens one more, one at a time (sshd's
 * `MaxStartups` drops bursts of concurrent handshakes), up to `maxConnections`. A
 * connection that drops is forgotten at once; the next request opens a new one.
 */
export class ConnectionPool<C extends PoolConnection> {
  private readonly entries: Entry<C>[] = [];
  private readonly waiters: Waiter<C>[] = [];
  private opening: Promise<C> | undefined;
  private closed = false;
  private growthBlockedUntil = 0;
  private growthTimer: ReturnType<typeof setTimeout> | undefined;
  /** Aborted by close(), so a connection still being opened stops at once. */
  private readonly lifetime = new AbortController();

  constructor(
    private readonly open: (signal: AbortSignal) => Promise<C>,
    private readonly options: PoolOptions,
  ) {}

  /** Live connections, oldest first. */
  get connections(): C[] {
    return this.entries.map((e) => e.connection);
  }

  /** Channels in use, over all connections. */
  get activeChannels(): number {
    return this.entries.reduce((n, e) => n + e.active, 0);
  }

  /** Requests waiting for a channel. */
  get queued(): number {
    return this.waiters.length;
  }

  /** Caps per connection (lowered when a server refused channels below our cap). */
  get capacities(): number[] {
    return this.entries.map((e) => e.capacity);
  }

  /**
   * Resolves with a live connection, opening the first one if there is none. Rejects with
   * the connection error (`AUTH_FAILED`, `HOST_KEY_*`, `CONNECT_*`) or `signal`'s reason.
   */
  async connection(signal: AbortSignal): Promise<C> {
    this.assertOpen();
    const live = this.entries[0];
    if (live) return live.connection;
    return raceSignal(this.opening ?? this.startOpening(), signal);
  }

  /** Waits for a channel slot. `urgent` requests go before every queued one. */
  acquire(signal: AbortSignal, urgent = false): Promise<ChannelSlot<C>> {
    this.assertOpen();
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason);
      };
      const waiter: Waiter<C> = {
        resolve,
        reject,
        cleanup: () => signal.removeEventListener("abort", onAbort),
      };
      signal.addEventListener("abort", onAbort, { once: true });
      if (urgent) this.waiters.unshift(waiter);
      else this.waiters.push(waiter);
      this.dispatch();
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new ConnectorError("CLOSED", "ssh", "connector is closed");
  }

  private slotFor(entry: Entry<C>): ChannelSlot<C> {
    let released = false;
    let open = false;
    const release = () => {
      if (released) return;
      released = true;
      entry.active--;
      if (open) entry.established--;
      this.dispatch();
    };
    return {
      connection: entry.connection,
      opened: () => {
        if (released || open) return;
        open = true;
        entry.established++;
        entry.peak = Math.max(entry.peak, entry.established);
      },
      release,
      refused: () => {
        if (released) return false;
        // Channels the server holds for us: those seen open (peak) or still in flight
        // besides this one (their refusals, if any, arrive after ours and lower it further).
        const others = entry.active - 1;
        const known = Math.max(entry.peak, others);
        if (known >= 1 && known < entry.capacity) {
          this.options.logger?.info?.(
            `ssh: server refused a channel on connection ${entry.connection.id} with ${known} open; lowering its cap to ${known}`,
          );
          entry.capacity = known;
        }
        release();
        return known >= 1;
      },
    };
  }

  private dispatch(): void {
    while (this.waiters.length > 0) {
      const entry = this.entries.find((e) => e.connection.alive && e.active < e.capacity);
      if (!entry) break;
      const waiter = this.waiters.shift() as Waiter<C>;
      waiter.cleanup();
      entry.active++;
      waiter.resolve(this.slotFor(entry));
    }
    if (this.waiters.length > 0) this.grow();
  }

  private grow(): void {
    if (this.opening || this.closed || this.entries.length >= this.options.maxConnections) return;
    const wait = this.growthBlockedUntil - Date.now();
    if (wait > 0 && this.entries.length > 0) {
      if (!this.growthTimer) {
        this.growthTimer = setTimeout(() => {
          this.growthTimer = undefined;
          this.dispatch();
        }, wait);
        this.growthTimer.unref?.();
      }
      return;
    }
    this.startOpening().catch(() => {
      // Reported to waiters (or logged) in startOpening.
    });
  }

  private startOpening(): Promise<C> {
    const opening = this.open(this.lifetime.signal).then(
      (connection) => {
        this.opening = undefined;
        if (this.closed) {
          void connection.close();
          throw new ConnectorError("CLOSED", "ssh", "connector is closed");
        }
        const entry: Entry<C> = {
          connection,
          active: 0,
          established: 0,
          peak: 0,
          capacity: this.options.maxChannelsPerConnection,
        };
        this.entries.push(entry);
        connection.onLost(() => {
          const i = this.entries.indexOf(entry);
          if (i >= 0) this.entries.splice(i, 1);
          this.dispatch();
        });
        this.dispatch();
        return connection;
      },
      (error: unknown) => {
        this.opening = undefined;
        if (this.entries.length === 0) {
          // Nothing can serve the queue: every waiter gets the connection's error.
          for (const w of this.waiters.splice(0)) {
            w.cleanup();
            w.reject(error);
          }
        } else {
          this.options.logger?.warn(`ssh: could not open an extra connection: ${(error as Error).message}`);
          this.growthBlockedUntil = Date.now() + (this.options.growthBackoffMs ?? 5_000);
          this.dispatch();
        }
        throw error;
      },
    );
    this.opening = opening;
    return opening;
  }

  /** Rejects queued requests with `CLOSED` and closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.growthTimer) clearTimeout(this.growthTimer);
    const error = new ConnectorError("CLOSED", "ssh", "connector closed");
    this.lifetime.abort(error);
    for (const w of this.waiters.splice(0)) {
      w.cleanup();
      w.reject(error);
    }
    const opening = this.opening;
    await Promise.all([
      ...this.entries.splice(0).map((e) => e.connection.close()),
      opening?.then(
        (c) => c.close(),
        () => {},
      ),
    ]);
  }
}
