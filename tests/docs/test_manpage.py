"""docs/eipha.1: generated from the command tree, current, and a page man and groff read.

scripts/test.sh runs ``tools/gen_man.py --check`` as well; this tier says the same when run
alone. The page is rendered by groff, as man does, with every warning on: a roff mistake (an
unescaped control character, a bad request) is a warning. Every command and every option of
the click tree must be in the rendered text, so no command can be left out of the manual.
"""

from __future__ import annotations

import os
import re
import subprocess

import click
import pytest

from eipha.cli import cli
from tests.docs.markdown import REPO

PAGE = REPO / "docs" / "eipha.1"


def rendered() -> str:
    result = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-rLL=100n", str(PAGE)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    return re.sub(r".\x08", "", result.stdout)  # grotty's overstruck bold and underline


def test_the_page_is_what_the_generator_writes_now():
    from tools.gen_man import render

    assert PAGE.read_text() == render(), "run: .venv/bin/python tools/gen_man.py"


def test_groff_renders_it_without_a_warning():
    text = rendered()
    assert text.startswith("EIPHA(1)")
    for section in ("NAME", "SYNOPSIS", "GLOBAL OPTIONS", "COMMANDS", "EXIT STATUS",
                    "ENVIRONMENT", "FILES", "SHELL COMPLETION"):  # fmt: skip
        assert f"\n{section}\n" in text


GLOBAL = {"--config", "--region", "--verbose", "--quiet", "--help"}


def _commands(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
    if isinstance(command, click.Group):
        return [
            found
            for name, sub in sorted(command.commands.items())
            for found in _commands(sub, f"{path} {name}")
        ]
    return [(path, command)]


def test_the_global_options_are_in_their_section():
    section = rendered().split("\nGLOBAL OPTIONS\n", 1)[1].split("\nCOMMANDS\n", 1)[0]
    for param in cli.params:
        assert param.opts[-1] in section


@pytest.mark.parametrize(("path", "command"), _commands(cli, "eipha"), ids=lambda v: str(v))
def test_every_command_and_its_options_are_in_the_page(path: str, command: click.Command):
    text = rendered()
    assert f"\n   {path} [OPTIONS]" in text, f"{path} has no section"
    section = text.split(f"\n   {path} [OPTIONS]", 1)[1].split("\n   eipha ", 1)[0]
    for param in command.params:
        if isinstance(param, click.Option) and not GLOBAL & set(param.opts):
            assert param.opts[-1] in section, f"{path}: {param.opts}"
