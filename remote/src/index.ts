export {
  AGENT_DIR_ENV,
  AGENT_MANIFEST_NAME,
  AGENT_PROTOCOL_VERSION,
  AGENT_VERSION,
  type AgentFile,
  type AgentManifest,
  agentDir,
  agentFiles,
  agentManifest,
  parseAgentManifest,
} from "./files.js";
export { readRemoteManifest, type SyncAgentOptions, type SyncAgentResult, syncAgent } from "./sync.js";
