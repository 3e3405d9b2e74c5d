"""The pages as a whole: every block classified, every link and anchor resolving, and the
things no page may say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs import markdown as md

REL = [str(p.relative_to(md.REPO)) for p in md.PAGES]


def test_the_docs_are_there():
    """README.md and the pages it promises (the tier would pass vacuously without them)."""
    names = {p.name for p in md.PAGES}
    for name in ("README.md", "aws.md", "configuration.md", "commands.md", "heartbeat.md",
                 "keepalived.md", "pacemaker.md", "monitor.md", "sandbox.md"):  # fmt: skip
        assert name in names
    assert len(md.all_blocks()) > 50


def test_every_block_is_of_a_kind_the_tests_check():
    """A block of a new kind must get a check (and a kind in tests/docs/markdown.py) before
    it can be in the docs: mark it, or give it the first line of a known file."""
    unknown = [
        f"{b.where}: ```{b.info} {b.first!r} marker={b.marker!r}"
        for b in md.all_blocks()
        if b.kind == md.UNKNOWN
    ]
    assert unknown == []


def test_real_output_blocks_say_why():
    for block in md.of_kind(md.REAL_OUTPUT):
        assert block.marker is not None
        why = block.marker.removeprefix("real-output:").strip()
        assert len(why) > 10, f"{block.where}: say why its output cannot be reproduced here"


@pytest.mark.parametrize("page", md.PAGES, ids=REL)
def test_links_and_anchors_resolve(page: Path):
    broken = []
    for line, href in md.links(page):
        if re.match(r"[a-z]+:", href):
            continue  # https:, mailto:: not followed
        target, _, fragment = href.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(f"{line}: {href}: no such file")
        elif fragment and path.suffix == ".md" and fragment not in md.anchors(path):
            broken.append(f"{line}: {href}: no heading #{fragment} in {path.name}")
    assert broken == []


def test_every_page_is_reachable_from_the_readme():
    readme = md.REPO / "README.md"
    linked = {(readme.parent / href.partition("#")[0]).resolve() for _, href in md.links(readme)}
    missing = [p.name for p in md.PAGES if p != readme and p.resolve() not in linked]
    assert missing == []


@pytest.mark.parametrize("page", md.PAGES, ids=REL)
def test_no_page_cites_a_document_the_repo_does_not_have(page: Path):
    text = page.read_text()
    assert not re.search(r"DESIGN|§", text)


@pytest.mark.parametrize("page", md.PAGES, ids=REL)
def test_no_page_installs_eipha_from_an_index_by_name(page: Path):
    """There is no release on a package index: a bare `pip install eipha` would install
    someone else's package, or nothing."""
    for block in md.blocks(page):
        assert not re.search(r"pip install eipha(\s|$)", block.text), block.where


def inline_commands(page: Path) -> list[tuple[int, str]]:
    """(line, text) of every inline code span that is an eipha command line."""
    from markdown_it import MarkdownIt

    found = []
    for token in MarkdownIt("commonmark").enable("table").parse(page.read_text()):
        if token.type == "inline" and token.children and token.map is not None:
            found += [
                (token.map[0] + 1, child.content)
                for child in token.children
                if child.type == "code_inline" and child.content.startswith("eipha ")
            ]
    return found


@pytest.mark.parametrize("page", md.PAGES, ids=REL)
def test_eipha_commands_in_the_prose_are_real(page: Path):
    """An ``eipha …`` the prose names is a real command path with real options: the old
    README's "eipha web-b start" (what Heartbeat really runs is "eipha heartbeat web-b
    start") could not be written again. Placeholders (EIP…, [FILE], a|b) are allowed."""
    import click

    from eipha.cli import cli

    wrong = []
    for line, text in inline_commands(page):
        command: click.Command = cli
        known = {"-h", "--help", *(o for p in cli.params for o in (*p.opts, *p.secondary_opts))}
        words = text.split()[1:]
        for index, word in enumerate(words):
            token = word.strip("[]").rstrip("…")
            if token.startswith("-"):
                if token.split("=")[0] not in known:
                    wrong.append(f"{line}: `{text}`: {token}")
            elif isinstance(command, click.Group):
                previous = words[index - 1] if index else ""
                if previous in ("--config", "--region") or not token or token.isupper():
                    continue
                sub = command.commands.get(token)
                if sub is None:
                    wrong.append(f"{line}: `{text}`: {token} is not an eipha command")
                    break
                command = sub
                known |= {o for p in sub.params for o in (*p.opts, *p.secondary_opts)}
    assert wrong == []


def test_the_readme_fits_on_a_few_screens():
    """It leads to the pages; the pages hold the reference (the old one had 1,218 lines)."""
    assert len((md.REPO / "README.md").read_text().splitlines()) <= 300
