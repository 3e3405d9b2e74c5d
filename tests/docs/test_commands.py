"""Every command line of the docs, checked by its own program's parser; and the console blocks
that can run offline, run, printing what the page shows.

Checked (see tests/docs/programs.py): ``eipha`` lines parse with eipha's click command tree;
``aws`` lines pass the aws CLI's parser and botocore's validation with nothing sent;
``pcs``/``crm``/``ocf-tester`` use only the OCF agent's parameters and operations; the shims
stand for the eipha commands they exec. A page's commands see its files: a here-document
writes its file, and an offline eipha command whose output goes to a file (``eipha
iam-policy > eipha-policy.json``) is run, so the aws line that reads it reads the real thing.

Run offline and compared: a console block with no marker. Its commands run in the suite's
safe environment with the page's config as the default config; ``install-agents`` is staged
with ``--root`` into a temporary directory (its paths compared without it); ``eipha drill
--simulate`` is run once for every page. What is compared, and what is a placeholder: see
tests/docs/compare.py.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from tests.docs import markdown as md
from tests.docs import shell
from tests.docs.compare import matches
from tests.docs.conftest import run_steps, shell_env
from tests.docs.pages import DEFAULT, Layout, effective_config, lay_out
from tests.docs.programs import Page, check, parse_eipha

EIPHA = str(Path(sys.executable).parent / "eipha")
REL = [str(p.relative_to(md.REPO)) for p in md.PAGES]
WITH_COMMANDS = (md.SHELL, md.CONSOLE, md.SANDBOX, md.SESSION, md.REAL_OUTPUT)
# eipha commands that need no network and write nothing outside their output
OFFLINE = (["iam-policy"], ["config", "check"])


def commands_of(block: md.Block) -> Iterator[tuple[shell.Command, list[str]]]:
    """Each command of a block, with the output the page shows for it (none in sh)."""
    if block.kind == md.SHELL:
        for command in shell.commands(block.text):
            yield command, []
    elif block.kind in WITH_COMMANDS and block.info == "console":
        for step in shell.console(block.text):
            for command in shell.commands(step.line):
                yield command, step.output


def problems_of(command: shell.Command, shown: list[str], page: Page) -> list[str]:
    """A command's problems; a usage error the page shows as that command's output is what
    the page means to show, not a problem."""
    problems = check(command, page)
    usage = [line for line in shown if line.startswith("eipha: error: ") and "--help')" in line]
    if usage and len(problems) == 1:
        message = problems[0].partition(": ")[2]
        if any(message in line for line in usage):
            return []
    return problems


def eipha_path(command: shell.Command) -> list[str] | None:
    if command.program != "eipha" and not command.program.endswith("/bin/eipha"):
        return None
    try:
        return parse_eipha(command.words[1:])
    except (click.ClickException, click.exceptions.Exit):
        return None


# what ansible/iam-policy.yml writes (relative to ansible/): `eipha iam-policy` of the pair's
# config, rendered from the inventory on the controller (tests/ansible/test_readme.py runs the
# playbook itself and checks the file against the inventory)
IAM_PLAYBOOK, IAM_POLICY_FILE = "iam-policy.yml", "credentials/eipha-iam-policy.json"


def effects(command: shell.Command, layout: Layout) -> None:
    """What a command leaves for the next ones: a here-document's file, an offline eipha
    command's output file, the policy file of ansible/iam-policy.yml."""
    if command.heredoc is not None and command.stdout:
        layout.write(command.stdout, command.heredoc)
    elif command.stdout and not command.stdout.startswith("/") and eipha_path(command) in OFFLINE:
        layout.write(command.stdout, offline_eipha(command.words[1:], layout, command.line))
    elif command.program == "ansible-playbook" and IAM_PLAYBOOK in command.words:
        layout.write(IAM_POLICY_FILE, offline_eipha(["iam-policy"], layout, command.line))


def offline_eipha(args: list[str], layout: Layout, line: str) -> str:
    """The output of an offline eipha command run with the page's config."""
    words = [EIPHA, *(layout.word(w) for w in args)]
    env = shell_env(EIPHA_CONFIG=str(layout.files[DEFAULT]))
    result = subprocess.run(words, cwd=layout.cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{line}: {result.stderr}"
    return result.stdout


@pytest.mark.parametrize("page", md.PAGES, ids=REL)
def test_every_command_parses_with_its_own_program(page: Path, tmp_path: Path):
    layout = lay_out(page, tmp_path)
    context = Page(effective_config(page), layout.cwd)
    problems = []
    for block in md.blocks(page):
        for command, shown in commands_of(block):
            problems += [f"{block.where}: {p}" for p in problems_of(command, shown, context)]
            effects(command, layout)
    assert problems == []


def test_here_documents_that_are_json_parse():
    import json

    for block in md.of_kind(md.SHELL):
        for command in shell.commands(block.text):
            if command.heredoc is not None and (command.stdout or "").endswith(".json"):
                json.loads(command.heredoc)


# --------------------------------------------------------------------------- run offline


def runnable(line: str, shown: list[str], layout: Layout) -> str:
    """The page's command line as it runs here: its paths made real, ``install-agents``
    staged under the layout's root with the eipha path the page shows."""
    tokens = shell.split(line)
    commands = list(shell.simple(tokens, line, None))
    out = []
    for token in tokens:
        if token in shell.OPERATORS:
            out.append(token)
        else:
            word = layout.word(token)
            out.append(word if re.fullmatch(r"[\w@%+=:,./$?-]+", word) else shlex.quote(word))
    text = " ".join(out)
    first = commands[0] if commands else None
    if first is not None and eipha_path(first) == ["install-agents"]:
        extra = []
        if "--root" not in first.words:
            extra += ["--root", str(layout.root)]
        if "--bin" not in first.words:
            summary = next((s for s in shown if "(eipha is " in s), "")
            match = re.search(r"\(eipha is (\S+)\)", summary)
            extra += ["--bin", match.group(1)] if match else []
        text = text.replace("install-agents", "install-agents " + shlex.join(extra), 1)
    return text


def staged(line: str, layout: Layout) -> str:
    """An output line with the staging root taken off (as the page shows it, from /)."""
    return layout.back(line).replace(str(layout.root), "")


@pytest.mark.parametrize("block", md.of_kind(md.CONSOLE), ids=repr)
def test_offline_console_blocks_print_what_the_page_shows(
    block: md.Block, tmp_path: Path, story: list[str]
):
    layout = lay_out(block.page, tmp_path)
    steps = shell.console(block.text)
    for step in steps:
        for command in shell.commands(step.line):
            assert command.program in ("eipha", "echo") or command.program.endswith("/bin/eipha"), (
                f"{block.where}: {command.line}: only eipha runs offline; mark the block"
            )
    lines = [runnable(step.line, step.output, layout) for step in steps]
    env = shell_env(EIPHA_CONFIG=str(layout.files[DEFAULT]))
    simulated = [" drill --simulate" in f" {line}" for line in lines]
    printed = run_steps(
        [":" if sim else line for sim, line in zip(simulated, lines, strict=True)],
        layout.cwd,
        env,
    )
    for step, sim, out in zip(steps, simulated, printed, strict=True):
        got = story if sim else [staged(line, layout) for line in out]
        problem = matches(step.output, got)
        assert problem is None, f"{block.where}: $ {step.line}\n{problem}"


# --------------------------------------------------------------------------- synopses


@pytest.mark.parametrize("block", md.of_kind(md.SYNOPSIS), ids=repr)
def test_synopses_name_real_commands_and_their_options(block: md.Block):
    """A synopsis (``eipha drill EIP --to NODE [--back] …``) names a real command path, and
    only options that command (or the group above it) takes."""
    from eipha.cli import cli

    for line in block.lines:
        command: click.Command = cli
        known = {o for p in cli.params for o in (*p.opts, *p.secondary_opts)}
        for word in line.split()[1:]:
            token = word.strip("[]").rstrip("…").rstrip(".")
            if isinstance(command, click.Group) and token in command.commands:
                command = command.commands[token]
                known |= {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
            elif token.startswith("-"):
                assert token.split("=")[0] in known, f"{block.where}: {line}: {token}"
        assert command is not cli or "COMMAND" in line, f"{block.where}: {line}"
