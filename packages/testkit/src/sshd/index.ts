/**
 * A private OpenSSH `sshd` for integration tests: {@link startSshd} starts one on
 * 127.0.0.1; `@sremote/testkit/sshd/global-setup` is a vitest `globalSetup` that starts one
 * per test run and `provide`s its {@link SshdFacts} as `sremoteSshd`.
 */
export {
  DEFAULT_TEST_USER,
  defaultTestUser,
  publicKeyFingerprint,
  SSHD_PATH,
  type SshdFacts,
  type SshdFixture,
  type SshdProbe,
  type StartSshdOptions,
  sshCliFlags,
  sshConnectorOptions,
  sshdMissing,
  sshdProbe,
  sshTarget,
  startSshd,
  uniqueName,
} from "./fixture.js";
export { descendantsOf, isAlive, listProcesses, type ProcessInfo, waitGone } from "./processes.js";
export { SSHD_PROVIDE_KEY } from "./provided.js";
