// Owned by the agent work: see remote/README.md. Placeholder so the workspace typechecks.
export {};
