"""Comparing what a page shows with what a command printed.

What differs from run to run, and only that, becomes a placeholder on both sides: moto's
ids (``eni-…``, ``i-…``, ``eipalloc-…``, ``eipassoc-…``), public IPv4 addresses (moto's
127.x, the docs' 203.0.113.x, endpoints), the sandbox's directory, and numbers (timings,
pids, ports, clock times). Private IPs (10.x), names, words and the order of lines must match.
Whitespace runs count as one space (tables are aligned to their widest cell). A ``...`` line
on the page stands for any number of lines.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

ELISION = "..."
IDS = re.compile(r"\b(i|eni|eipalloc|eipassoc|sg)-[0-9a-f]{8,17}\b")
IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
SANDBOX_DIR = re.compile(r"(?:/[^\s/]+)*/eipha-sandbox(?:-\d+)?")
PRIVATE = ipaddress.ip_network("10.0.0.0/8")
KEEP = 0xE000  # private-use code points stand in for the private IPs kept


def normalize(line: str) -> str:
    line = SANDBOX_DIR.sub("SANDBOX", line)
    line = IDS.sub(lambda m: f"{m.group(1)}-ID", line)
    kept: list[str] = []

    def address(match: re.Match[str]) -> str:
        text = match.group(0)
        try:
            private = ipaddress.ip_address(text) in PRIVATE
        except ValueError:
            return text
        if not private:
            return "IP"
        kept.append(text)
        return chr(KEEP + len(kept) - 1)  # no digits in it: NUMBER leaves it alone

    line = NUMBER.sub("N", IPV4.sub(address, line))
    for index, text in enumerate(kept):
        line = line.replace(chr(KEEP + index), text)
    return " ".join(line.split())


def matches(shown: Sequence[str], printed: Sequence[str]) -> str | None:
    """None when ``printed`` is what ``shown`` shows; else what differs, for the message."""
    want = [normalize(s) for s in shown]
    got = [normalize(p) for p in printed]
    if ELISION not in shown:
        if want == got:
            return None
        return _diff(shown, printed)
    # an excerpt: the shown lines, in order, each run between elisions consecutive
    position = 0
    runs: list[list[str]] = [[]]
    for line in want:
        if line == ELISION:
            runs.append([])
        else:
            runs[-1].append(line)
    for index, run in enumerate(runs):
        if not run:
            continue
        found = _find(got, run, position, anchored=index == 0)
        if found is None:
            return f"not found in order: {run!r}\nprinted:\n" + "\n".join(printed)
        position = found + len(run)
    if runs[-1] and position != len(got):
        return "the excerpt ends before the output does:\n" + "\n".join(printed)
    return None


def _find(got: list[str], run: list[str], start: int, anchored: bool) -> int | None:
    last = start if anchored else len(got) - len(run)
    for at in range(start, last + 1):
        if got[at : at + len(run)] == run:
            return at
    return None


def _diff(shown: Sequence[str], printed: Sequence[str]) -> str:
    import difflib

    lines = difflib.unified_diff(
        [normalize(s) for s in shown],
        [normalize(p) for p in printed],
        "shown (normalized)",
        "printed (normalized)",
        lineterm="",
    )
    return "\n".join([*lines, "printed:", *printed])
