const KWARGS = Symbol.for("sremote.kwargs");

/** Keyword arguments for a proxy call, made by {@link kw}. */
export interface Kwargs {
  readonly [KWARGS]: true;
  readonly values: Record<string, unknown>;
}

/**
 * Marks keyword arguments for a module proxy call:
 * `await qdo.connect("q", kw({ create_ok: true }))`.
 */
export function kw(values: Record<string, unknown>): Kwargs {
  return { [KWARGS]: true, values };
}

/** True when `v` was made by {@link kw}. */
export function isKwargs(v: unknown): v is Kwargs {
  return typeof v === "object" && v !== null && (v as Partial<Kwargs>)[KWARGS] === true;
}

type AsyncFunction<F> = F extends (...args: infer A) => infer R
  ? (...args: [...A] | [...A, Kwargs]) => Promise<Awaited<R>>
  : never;

/**
 * An attribute of a module proxy whose type is not known: calling it calls the remote
 * function (the result is `unknown` until you check it), and its own attributes go one
 * level deeper (`os.path.join`). Pass keyword arguments with {@link kw} as the last argument.
 */
export interface UntypedRemoteAttribute {
  (...args: unknown[]): Promise<unknown>;
  readonly [name: string]: UntypedRemoteAttribute;
}

/**
 * The shape of `client.module<T>(name)`: every function of `T` returns a promise of its
 * result; nested objects (Python classes or submodules used as namespaces) are proxies too.
 * Members typed `unknown` (or `any`) — and every attribute of the untyped
 * `client.module(name)`, which is `ModuleProxy<Record<string, unknown>>` — are
 * {@link UntypedRemoteAttribute}s: callable, returning `Promise<unknown>`.
 */
export type ModuleProxy<T> = {
  readonly [K in keyof T]: unknown extends T[K]
    ? UntypedRemoteAttribute
    : T[K] extends (...args: never[]) => unknown
      ? AsyncFunction<T[K]>
      : T[K] extends object
        ? ModuleProxy<T[K]>
        : never;
};

/** The untyped `client.module(name)`: any attribute path, called, resolves to `unknown`. */
export type UntypedModuleProxy = ModuleProxy<Record<string, unknown>>;

/** Builds a proxy whose property paths become dotted function names passed to `invoke`. */
export function createModuleProxy<T>(invoke: (fn: string, args: unknown[]) => Promise<unknown>): ModuleProxy<T> {
  const make = (path: string[]): unknown =>
    new Proxy(() => undefined, {
      get(_target, prop) {
        // Not thenable: `await client.module("x")` must not try to call `x.then`.
        if (typeof prop === "symbol" || prop === "then") return undefined;
        return make([...path, prop]);
      },
      apply(_target, _this, args: unknown[]) {
        if (path.length === 0) return Promise.reject(new TypeError("call a function of the module, not the module"));
        return invoke(path.join("."), args);
      },
    });
  return make([]) as ModuleProxy<T>;
}
