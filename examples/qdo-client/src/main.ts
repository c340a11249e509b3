// SRemote QDO client example: installs QDO into an endpoint, then runs the original
// tool's client flows (valid_queue_name, the three error kinds, env and PATH, timings).
// Work in progress: the flows land in the next commits.
console.log("qdo-client: not implemented yet");
