export {
  DEFAULT_NEWT_USER,
  type NewtCommandRecord,
  type NewtDouble,
  type NewtDoubleClock,
  type NewtDoubleOptions,
  type NewtDoubleUser,
  type NewtRequestLogEntry,
  type NewtRequestOutcome,
  startNewtDouble,
} from "./double.js";
export type { NewtFault, NewtFaultRequest, NewtRoute } from "./faults.js";
export type { NewtDirEntry } from "./files.js";
export { ShellWordsError, splitShellWords } from "./shell-words.js";
