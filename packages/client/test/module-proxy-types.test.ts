// Type-level tests of module proxies: the expectTypeOf and @ts-expect-error lines are
// checked by `tsc` (the package's typecheck covers test/), the calls run under vitest.
import { describe, expect, expectTypeOf, it } from "vitest";
import { type Kwargs, kw, type ModuleProxy } from "../src/index.js";
import { createModuleProxy, type UntypedModuleProxy, type UntypedRemoteAttribute } from "../src/proxy.js";

function recordingProxy<T>(): { proxy: ModuleProxy<T>; calls: [string, unknown[]][] } {
  const calls: [string, unknown[]][] = [];
  const proxy = createModuleProxy<T>(async (fn, args) => {
    calls.push([fn, args]);
    return fn;
  });
  return { proxy, calls };
}

describe("untyped module proxies", () => {
  it("are callable at any attribute path under strict, resolving to unknown", async () => {
    const { proxy, calls } = recordingProxy<Record<string, unknown>>();
    expectTypeOf(proxy).toEqualTypeOf<UntypedModuleProxy>();
    // The repo compiles with noUncheckedIndexedAccess, which adds `undefined` to any
    // attribute read through an index signature; users on plain `strict` need no `!`.
    const shorten = proxy.shorten!;
    expectTypeOf(shorten).toEqualTypeOf<UntypedRemoteAttribute>();
    expectTypeOf(shorten).parameters.toEqualTypeOf<unknown[]>();
    expectTypeOf(shorten).returns.toEqualTypeOf<Promise<unknown>>();
    expectTypeOf(proxy.path!.join!).returns.toEqualTypeOf<Promise<unknown>>();

    const value = await shorten("a long sentence", kw({ width: 10 }));
    expectTypeOf(value).toBeUnknown();
    await proxy.path!.join!("a", "b");
    expect(calls).toEqual([
      ["shorten", ["a long sentence", kw({ width: 10 })]],
      ["path.join", ["a", "b"]],
    ]);
  });

  it("are what a member typed unknown or any becomes in a typed proxy", () => {
    // biome-ignore lint/suspicious/noExplicitAny: what an `any` member becomes is the point
    const { proxy } = recordingProxy<{ loose: unknown; anything: any; sqrt(x: number): number }>();
    expectTypeOf(proxy.loose).toEqualTypeOf<UntypedRemoteAttribute>();
    expectTypeOf(proxy.anything).toEqualTypeOf<UntypedRemoteAttribute>();
    expectTypeOf(proxy.sqrt).returns.toEqualTypeOf<Promise<number>>();
  });
});

describe("typed module proxies", () => {
  interface Api {
    valid_queue_name(name: string): boolean;
    connect(name: string, create: boolean): Promise<{ name: string }>;
    path: { join(...parts: string[]): string };
    version: string;
  }

  it("keep the precise parameter and result types", async () => {
    const { proxy, calls } = recordingProxy<Api>();
    expectTypeOf(proxy.valid_queue_name).parameters.toEqualTypeOf<[string] | [string, Kwargs]>();
    expectTypeOf(proxy.valid_queue_name).returns.toEqualTypeOf<Promise<boolean>>();
    // An async Python-side result is not wrapped twice.
    expectTypeOf(proxy.connect).returns.toEqualTypeOf<Promise<{ name: string }>>();
    expectTypeOf(proxy.path.join).returns.toEqualTypeOf<Promise<string>>();
    // A non-function, non-object member cannot be called through a proxy.
    expectTypeOf(proxy.version).toBeNever();

    await proxy.valid_queue_name("q");
    await proxy.connect("q", true, kw({ create_ok: true }));
    // @ts-expect-error a number is not a queue name
    await proxy.valid_queue_name(1);
    // @ts-expect-error too many positional arguments
    await proxy.valid_queue_name("q", "extra");
    // @ts-expect-error not a member of Api
    proxy.missing;
    expect(calls.map(([fn]) => fn)).toEqual(["valid_queue_name", "connect", "valid_queue_name", "valid_queue_name"]);
  });
});
