"""The ``eipha`` program: cluster managers' plain agent calls take a short way in (no
click); everything else goes to the click command line in :mod:`eipha.cli`.

Importing this module imports nothing else: deciding which way to go must not cost the
commands that go the other way (``--help`` stays at the start-up time of click alone)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

# The agent calls, by the words that name them; True when their arguments are raw (the
# manager's own words: only options before the first of them are eipha's, as click reads it).
AGENTS: dict[tuple[str, ...], bool] = {
    ("heartbeat",): True,
    ("keepalived", "notify"): True,
    ("keepalived", "fifo"): False,
    ("ocf",): False,
}
# the options of the eipha group that every command takes too (eipha.cli.common)
GLOBAL_LONG = frozenset({"--config", "--region", "--verbose", "--quiet"})
GLOBAL_SHORT = frozenset("vq")


def _is_global(word: str) -> bool:
    """Would click read ``word`` as one of the global options (``-vq`` counts)?"""
    if word.startswith("--"):
        return word.partition("=")[0] in GLOBAL_LONG
    return word.startswith("-") and not GLOBAL_SHORT.isdisjoint(word[1:])


def _options(words: Sequence[str], raw: bool) -> list[str]:
    """The words click would read as options: up to ``--``, and for raw arguments only
    those before the first word that is not an option."""
    found = []
    for word in words:
        if word == "--" or (raw and not word.startswith("-")):
            break
        if word.startswith("-") and word != "-":
            found.append(word)
    return found


def plain_agent_call(argv: Sequence[str]) -> bool:
    """A cluster manager's call with no global options and no --help."""
    if any(a in ("-h", "--help") for a in argv):
        return False
    for words, raw in AGENTS.items():
        if tuple(argv[: len(words)]) == words:
            return not any(_is_global(w) for w in _options(argv[len(words) :], raw))
    return False


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if plain_agent_call(args):
        from eipha.agents import fast_path

        if argv is None:  # the program itself: see exit_program
            fast_path.exit_program(args)
        return fast_path.main(args)
    from eipha.cli import main as cli_main

    return cli_main(args)
