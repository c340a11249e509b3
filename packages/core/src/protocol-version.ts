/**
 * The wire protocol's major version: `v` of every message and `hello.agent.protocol`
 * (docs/protocol.md). The one TypeScript definition — `@sremote/protocol` and
 * `@sremote/agent` re-export it — tied to the Python agent's `PROTOCOL_VERSION` by a test.
 */
export const PROTOCOL_VERSION = 1;
