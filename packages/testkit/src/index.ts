export type { ConformanceFixture, ConformanceSetup } from "./conformance/context.js";
export { expectCode } from "./conformance/expect-code.js";
export {
  CONFORMANCE_GROUPS,
  type ConformanceGroup,
  type ConformanceOptions,
  type ConformanceSkip,
  checkSkips,
  conformanceGroups,
  type DescribeConformanceGroup,
  describeConnectorConformance,
  GROUP_CAPABILITY,
} from "./conformance/suite.js";
export { HOSTILE_FILE_NAMES, HOSTILE_WORDS, randomHostileStrings, seededRandom } from "./hostile.js";
export { pythonHasModules, SYSTEM_PYTHON } from "./python.js";
export {
  describeExit,
  execOk,
  largeText,
  parseOdHex,
  remoteArgv,
  remoteExists,
  remoteFileBytes,
  remoteFileSize,
  remoteMode,
  sha256,
  sleep,
  waitForRemoteFile,
} from "./remote-tools.js";
export { describeUnless, type SuiteFunction } from "./skips.js";
