"""What the cluster managers' own files say about eipha, read without running them.

A keepalived instance that runs eipha's notify script but is missing from eipha's
``keepalived.instances``, or a Heartbeat ``haresources`` line naming an EIP the config does
not know, is a failover that does nothing when it is needed. ``eipha validate`` reads
``keepalived.conf`` and ``haresources`` with the functions here and compares them with the
config. Standard library only; no network, nothing is run.
"""

from __future__ import annotations

import glob
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"
HA_DIR = "/etc/ha.d"
NOTIFY_KEYWORDS = frozenset(
    {
        "notify",
        "notify_master",
        "notify_backup",
        "notify_fault",
        "notify_stop",
        "notify_deleted",
        "notify_master_rx_lower_pri",
    }
)
_MAX_INCLUDES = 64  # keepalived nests includes; a loop must not hang us


@dataclass
class Keepalived:
    """The VRRP instances and sync groups of a keepalived.conf, and which call eipha."""

    instances: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    calling_eipha: list[str] = field(default_factory=list)  # through a notify script
    fifo: bool = False  # vrrp_notify_fifo_script runs eipha: every instance's events reach it


def _tokens(text: str) -> Iterator[str]:
    """keepalived's words: whitespace-separated, quotes kept together, ``#``/``!``
    comments dropped, braces as words of their own."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = "#!"
    try:
        for word in lexer:
            if len(word) > 1 and word[-1] in "{}":
                yield word[:-1]
                yield word[-1]
            elif len(word) > 1 and word[0] in "{}":
                yield word[0]
                yield word[1:]
            else:
                yield word
    except ValueError:  # an unclosed quote: what came before is all there is
        return


def _words(path: Path, depth: int = 0) -> Iterator[str]:
    """The words of ``path``, with ``include`` files (globs, relative to its directory)."""
    words = _tokens(path.read_text(errors="replace"))
    for word in words:
        if word == "include" and depth < _MAX_INCLUDES:
            pattern = next(words, "")
            if not pattern.startswith("/"):
                pattern = str(path.parent / pattern)
            for name in sorted(glob.glob(pattern)):
                yield from _words(Path(name), depth + 1)
        else:
            yield word


def read_keepalived(path: Path) -> Keepalived:
    """Parse ``path`` (raises OSError when it cannot be read)."""
    found = Keepalived()
    words = list(_words(path))
    stack: list[tuple[str, str | None]] = []
    for i, word in enumerate(words):
        if word == "{":
            keyword = words[i - 2] if i >= 2 else ""
            name = words[i - 1] if i >= 1 else None
            if keyword in ("vrrp_instance", "vrrp_sync_group") and not stack:
                (found.instances if keyword == "vrrp_instance" else found.groups).append(str(name))
                stack.append((keyword, name))
            else:
                stack.append((words[i - 1] if i else "", None))
        elif word == "}":
            if stack:
                stack.pop()
        elif word in NOTIFY_KEYWORDS and i + 1 < len(words) and "eipha" in words[i + 1]:
            owner = stack[0][1] if len(stack) == 1 else None
            if owner is not None and owner not in found.calling_eipha:
                found.calling_eipha.append(owner)
        elif word == "vrrp_notify_fifo_script" and i + 1 < len(words):
            found.fifo = found.fifo or "eipha" in words[i + 1]
    return found


@dataclass(frozen=True)
class Resource:
    """One ``eipha::EIP[::BINDING]`` of a haresources line."""

    node: str
    eip: str
    binding: str | None
    line: int


def read_haresources(path: Path) -> list[Resource]:
    """Every eipha resource in ``path``: ``NODE res res …`` lines, ``\\`` continuations,
    ``#`` comments (raises OSError when it cannot be read)."""
    resources = []
    logical: list[tuple[int, str]] = []  # (first physical line, the whole logical line)
    pending, first = "", 0
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), 1):
        text = raw.split("#", 1)[0]
        first = first or number
        if text.rstrip().endswith("\\"):
            pending += text.rstrip()[:-1] + " "
            continue
        logical.append((first, pending + text))
        pending, first = "", 0
    for number, text in logical:
        words = text.split()
        if len(words) < 2:
            continue
        for word in words[1:]:
            parts = word.split("::")
            if parts[0] == "eipha" and len(parts) >= 2:
                binding = parts[2] if len(parts) > 2 else None
                resources.append(Resource(words[0], parts[1], binding, number))
    return resources
