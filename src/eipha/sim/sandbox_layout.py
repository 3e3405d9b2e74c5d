"""Where an ``eipha sandbox`` keeps its files and which loopback ports it listens on."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from eipha import errors

DEFAULT_PORT = 7780
HOST = "127.0.0.1"
NODES = ("lb-a", "lb-b")
ROLES = (
    "the simulated EC2 API",
    "lb-a's IMDSv2 metadata",
    "lb-b's IMDSv2 metadata",
    "the router",
)
"""What listens on the base port and each one after it, in order."""
STATE_FILE = "sandbox.json"
LOCK_FILE = ".sandbox.lock"  # held by the running sandbox (see sandbox_files.claimed)


class SandboxError(errors.EiphaError):
    """The sandbox cannot start: a port is taken, or another sandbox runs in the directory."""


def default_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_RUNTIME_DIR/eipha-sandbox``, else ``/tmp/eipha-sandbox-UID``."""
    env = os.environ if env is None else env
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return Path(runtime_dir) / "eipha-sandbox"
    return Path("/tmp") / f"eipha-sandbox-{os.geteuid()}"  # noqa: S108 - owner-only, checked


@dataclass(frozen=True)
class Layout:
    """Where a sandbox keeps its files, and the ports it listens on."""

    directory: Path
    port: int = DEFAULT_PORT

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(self.port + offset for offset in range(len(ROLES)))

    @property
    def state(self) -> Path:
        return self.directory / STATE_FILE

    def config(self, node: str) -> Path:
        return self.directory / f"{node}.yaml"

    def run_dir(self, node: str) -> Path:
        return self.directory / node
