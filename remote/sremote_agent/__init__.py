"""SRemote agent: runs calls of Python functions for the SRemote TypeScript client.

The remote side of https://github.com/ (the SRemote monorepo, folder `remote/`): started by
`interpreter.sh` with the file carrier (one request file, one response file) or the
session carrier (framed MessagePack on stdin/stdout). See docs/protocol.md.
"""

__version__ = "0.1.0"
"""Equal to remote/package.json's version (scripts/sync-agent-version.mjs rewrites it)."""

PROTOCOL_VERSION = 1
"""The wire protocol's major version (`v` of every message, `hello.agent.protocol`)."""

from .values import NDArrayData, SerializationError  # noqa: E402

__all__ = ["__version__", "PROTOCOL_VERSION", "NDArrayData", "SerializationError"]
