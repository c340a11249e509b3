import type { SshdFacts } from "./fixture.js";

/** The `inject` key under which the global setup provides the fixture's facts. */
export const SSHD_PROVIDE_KEY = "sremoteSshd";

declare module "vitest" {
  export interface ProvidedContext {
    /** Facts of the private sshd started by `@sremote/testkit/sshd`'s global setup. */
    sremoteSshd: SshdFacts;
  }
}
