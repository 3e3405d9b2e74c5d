"""Console blocks that show eipha working on a pair, run in a real ``eipha sandbox``.

One sandbox (the simulated EC2 region, both nodes' IMDSv2 metadata, the router; free
loopback ports; its default directory under a private XDG_RUNTIME_DIR, so the lines it
prints are the ones a person sees) serves every page. A block marked
``<!-- doc-test: sandbox NODE -->`` runs as NODE after both EIPs are put back home; a sandbox
session (sandbox.md: blocks beginning with ``eipha sandbox`` or ``eval "$(eipha sandbox --env
NODE)"``) runs in the page's order, each block carrying on from the state the one before left,
as a person following the page would. The docs' ports (7780 to 7783) become the sandbox's;
each command's output (stdout and stderr as a terminal interleaves them) must be what the
page shows, with moto's ids, public IPs and numbers as placeholders (tests/docs/compare.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs import markdown as md
from tests.docs import shell
from tests.docs.compare import ELISION, matches
from tests.docs.conftest import Sandbox, run_steps

PAGES = [p for p in md.PAGES if md.of_kind(md.SANDBOX, p) or md.of_kind(md.SESSION, p)]


def run_block(sandbox: Sandbox, block: md.Block, node: str | None) -> None:
    steps = shell.console(block.text)
    lines = [sandbox.ports(step.line) for step in steps]
    if node is not None:
        lines = [f'eval "$(eipha sandbox --env {node})"', *lines]
    printed = run_steps(lines, sandbox.runtime_dir, sandbox.env)
    if node is not None:
        assert printed[0] == [], printed[0]
        printed = printed[1:]
    for step, out in zip(steps, printed, strict=True):
        problem = matches(step.output, out)
        assert problem is None, f"{block.where}: $ {step.line}\n{problem}"


def check_server(sandbox: Sandbox, block: md.Block) -> bool:
    """``$ eipha sandbox`` and what it printed until ready; False for an excerpt of its
    request log (``...`` first), which is checked after the page's sessions ran."""
    (step,) = shell.console(block.text)
    assert step.line == "eipha sandbox", f"{block.where}: the docs start the default sandbox"
    if step.output[:1] == [ELISION]:
        return False
    ready = next(i for i, line in enumerate(sandbox.lines) if line.startswith("ready: "))
    problem = matches(step.output, sandbox.lines[: ready + 1])
    assert problem is None, f"{block.where}: $ eipha sandbox\n{problem}"
    return True


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(md.REPO)) for p in PAGES])
def test_sandbox_examples_print_what_the_page_shows(page: Path, sandbox: Sandbox):
    sandbox.home()
    excerpts = []
    for block in md.blocks(page):
        if block.kind == md.SANDBOX:
            assert block.marker is not None
            node = block.marker.split()[1]
            sandbox.home()
            run_block(sandbox, block, node)
        elif block.kind == md.SESSION:
            if block.first == "$ eipha sandbox":
                if not check_server(sandbox, block):
                    excerpts.append(block)
            else:
                run_block(sandbox, block, None)
    for block in excerpts:
        (step,) = shell.console(block.text)
        ready = next(i for i, line in enumerate(sandbox.lines) if line.startswith("ready: "))
        problem = matches(step.output, sandbox.lines[ready + 1 :])
        assert problem is None, f"{block.where}: the sandbox's request log\n{problem}"
