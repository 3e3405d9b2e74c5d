"""The ``eipha`` program: cluster managers' plain agent calls take a short way in (no
click); everything else goes to the click command line in :mod:`eipha.cli`.

Importing this module imports nothing else: deciding which way to go must not cost the
commands that go the other way (``--help`` stays at the start-up time of click alone)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

# the agent commands, and the subcommands of each that take raw arguments
AGENTS: dict[str, tuple[str, ...] | None] = {
    "heartbeat": None,
    "keepalived": ("notify", "fifo"),
    "ocf": None,
}


def plain_agent_call(argv: Sequence[str]) -> bool:
    """A cluster manager's call with no global options and no --help."""
    if not argv or argv[0] not in AGENTS or any(a in ("-h", "--help") for a in argv):
        return False
    subcommands = AGENTS[argv[0]]
    return subcommands is None or (len(argv) > 1 and argv[1] in subcommands)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if plain_agent_call(args):
        from eipha.agents import entry

        if argv is None:  # the program itself: see exit_program
            entry.exit_program(args)
        return entry.main(args)
    from eipha.cli import main as cli_main

    return cli_main(args)
