"""The pages (README.md and docs/*.md), their fenced blocks, and what kind each block is.

A block's kind comes from its info string (``sh``, ``console``, ``yaml``, ``text``, none) and
its first line, which names the file a config block is (``# /etc/ha.d/ha.cf``, ``# part of
/etc/eipha/eipha.yaml``), or from a marker in an HTML comment just before it, which a reader
of the rendered page does not see:

- ``<!-- doc-test: figure -->``: a picture, nothing to run;
- ``<!-- doc-test: sandbox NODE -->``: a console session run in ``eipha sandbox`` as NODE,
  both EIPs at home first (a console block that itself begins with ``eipha sandbox`` or
  ``eval "$(eipha sandbox --env NODE)"`` is a sandbox session too, run in the page's order);
- ``<!-- doc-test: real-output: WHY -->``: what a real node or AWS answers; its commands are
  checked, its output cannot be reproduced here.

A block that fits none of the kinds is :data:`UNKNOWN`, and the tests fail on it, so a new
kind of example cannot slip into the docs unchecked.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parents[2]
PAGES = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))

MARKER = re.compile(r"<!--\s*doc-test:\s*(.*?)\s*-->", re.S)
# "# /etc/eipha/eipha.yaml ..." or "# eipha.yaml, to be ..." (a whole config file), and
# "# part of /etc/eipha/eipha.yaml" (a fragment of the page's whole one)
EIPHA_CONFIG = re.compile(r"# (?P<path>(?:/\S*/)?eipha[\w.-]*\.yaml)\b(?P<rest>.*)")
FRAGMENT = re.compile(r"# part of (?P<path>\S*eipha\.yaml)\b")
FILE_HEADER = re.compile(r"# (?:part of )?(?P<path>/\S+)")

# kinds
FIGURE = "figure"
CONFIG = "eipha config"
BROKEN_CONFIG = "eipha config, broken on purpose"
CONFIG_FRAGMENT = "eipha config fragment"
INVENTORY = "Ansible YAML"
HA_CF = "ha.cf"
HARESOURCES = "haresources"
KEEPALIVED_CONF = "keepalived.conf"
KEEPALIVED_PART = "keepalived.conf fragment"
DEFAULTS = "/etc/default/eipha"
SHELL = "shell commands"
CONSOLE = "console, run offline"
SANDBOX = "console, run in the sandbox"
SESSION = "console, a sandbox session"
REAL_OUTPUT = "console, output of a real node"
SYNOPSIS = "synopsis"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its info string, its text, and the marker before it."""

    page: Path
    line: int  # 1-based line of the opening fence
    info: str
    text: str
    marker: str | None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    @property
    def first(self) -> str:
        return self.text.split("\n", 1)[0]

    @property
    def lines(self) -> list[str]:
        return self.text.rstrip("\n").split("\n")

    @property
    def path(self) -> str | None:
        """The file this block is, when its first line names one."""
        match = FILE_HEADER.match(self.first) or EIPHA_CONFIG.match(self.first)
        return match.group("path") if match else None

    @property
    def kind(self) -> str:
        return classify(self)

    def __repr__(self) -> str:  # pytest ids
        return self.where


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


@cache
def blocks(page: Path) -> tuple[Block, ...]:
    """Every fenced block of ``page``, in order, each with the marker just before it."""
    found = []
    marker = None
    for token in _parser().parse(page.read_text()):
        if token.type == "html_block":
            match = MARKER.search(token.content)
            marker = match.group(1) if match else None
            continue
        if token.type == "fence" and token.map is not None:
            info = token.info.split()[0] if token.info.strip() else ""
            found.append(Block(page, token.map[0] + 1, info, token.content, marker))
        marker = None
    return tuple(found)


def all_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page)]


def classify(block: Block) -> str:
    marker = block.marker or ""
    if marker == "figure":
        return FIGURE
    if marker.startswith("sandbox ") and block.info == "console":
        return SANDBOX
    if marker.startswith("real-output:") and block.info in ("console", "text"):
        return REAL_OUTPUT
    if marker:
        return UNKNOWN
    first = block.first
    if block.info == "yaml":
        if FRAGMENT.match(first):
            return CONFIG_FRAGMENT
        config = EIPHA_CONFIG.match(first)
        if config:
            return BROKEN_CONFIG if "broken on purpose" in config.group("rest") else CONFIG
        if first.startswith("# ansible/"):
            return INVENTORY
        return UNKNOWN
    if block.info == "text":
        return {
            "# /etc/ha.d/ha.cf": HA_CF,
            "# /etc/ha.d/haresources": HARESOURCES,
        }.get(first) or _keepalived(first)
    if block.info == "sh":
        return DEFAULTS if first == "# /etc/default/eipha" else SHELL
    if block.info == "console":
        if first.startswith(("$ eipha sandbox", '$ eval "$(eipha sandbox --env ')):
            return SESSION
        return CONSOLE
    if block.info == "" and all(line.startswith("eipha ") for line in block.lines):
        return SYNOPSIS
    return UNKNOWN


def _keepalived(first: str) -> str:
    if first.startswith("# /etc/keepalived/keepalived.conf"):
        return KEEPALIVED_CONF
    if first.startswith("# part of /etc/keepalived/keepalived.conf"):
        return KEEPALIVED_PART
    return UNKNOWN


def of_kind(kind: str, page: Path | None = None) -> list[Block]:
    return [b for b in (blocks(page) if page else all_blocks()) if b.kind == kind]


# --------------------------------------------------------------------------- links and anchors


def headings(page: Path) -> list[str]:
    tokens = _parser().parse(page.read_text())
    return [
        tokens[i + 1].content
        for i, t in enumerate(tokens)
        if t.type == "heading_open" and i + 1 < len(tokens)
    ]


def _plain(inline: str) -> str:
    """A heading's text as GitHub reads it for its anchor: code spans keep their text."""
    return re.sub(r"`([^`]*)`", r"\1", re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", inline))


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(
        ch for ch in _plain(heading).lower() if ch in " -_" or unicodedata.category(ch)[0] in "LMN"
    )
    return kept.replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in headings(page):
        slug = anchor(heading)
        count = seen.get(slug, 0)
        out.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return frozenset(out)


def links(page: Path) -> Iterator[tuple[int, str]]:
    """(line, href) of every link on the page."""
    for token in _parser().parse(page.read_text()):
        if token.type == "inline" and token.children and token.map is not None:
            for child in token.children:
                if child.type == "link_open":
                    yield token.map[0] + 1, str(child.attrs.get("href", ""))
