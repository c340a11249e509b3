"""SRemote agent: runs calls of Python functions for the SRemote TypeScript client.

The remote side of SRemote (the `@sremote/agent` package, folder `remote/` of the
monorepo): started by `interpreter.sh` with the file carrier (one request file, one
response file) or the session carrier (framed MessagePack on stdin/stdout). See
docs/protocol.md.

Modules: main (command line) -> file_carrier | session (scheduling) over frames (frame
I/O); runner (one call) with capture (per-call output); stdio (standard streams at
start-up); info (the agent's facts); messages, codec, codec_pure, values, versions.
"""

__version__ = "0.1.0"
"""Equal to remote/package.json's version (scripts/sync-agent-version.mjs rewrites it)."""

PROTOCOL_VERSION = 1
"""The wire protocol's major version (`v` of every message, `hello.agent.protocol`): the
agent's only copy. remote/test/protocol-version.test.ts checks that it equals the
TypeScript side's."""

from .values import NDArrayData, SerializationError  # noqa: E402

__all__ = ["__version__", "PROTOCOL_VERSION", "NDArrayData", "SerializationError"]
