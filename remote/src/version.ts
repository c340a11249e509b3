// Written by scripts/sync-agent-version.mjs from this package's package.json (run by the
// root `version-packages` script after `changeset version`); a test checks they agree.
export const AGENT_PACKAGE_VERSION = "0.1.0";
