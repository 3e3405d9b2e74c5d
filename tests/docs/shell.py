"""Shell lines as the docs write them, split into simple commands (standard library only).

The docs use a small part of sh: ``&&``, ``;``, ``|``, ``( … )``, ``>``/``>>``, ``\\``
continuations, ``VAR=value`` prefixes, ``sudo`` and ``ssh HOST``, ``$( … )`` inside quotes,
and ``cat > FILE <<'EOF'`` here-documents. :func:`commands` turns such text into
:class:`Command` values, the program first; anything this module does not understand is
returned as it is, for the caller's checks to reject.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field

OPERATORS = {"&&", "||", ";", "|", "(", ")", "&"}
REDIRECT = re.compile(r"[<>]+&?")
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
HEREDOC = re.compile(r"<<-?\s*'?(?P<tag>\w+)'?")
SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")


@dataclass
class Command:
    """One simple command: its words (program first), its ``VAR=value`` prefix, where its
    stdout goes, and the here-document it reads, if any."""

    words: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdout: str | None = None
    heredoc: str | None = None
    line: str = ""
    via: list[str] = field(default_factory=list)  # the wrappers taken off: sudo, ssh HOST

    @property
    def program(self) -> str:
        return self.words[0] if self.words else ""


def logical_lines(text: str) -> Iterator[tuple[str, str | None]]:
    """(line, here-document body or None), continuation lines joined."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i].strip()
        i += 1
        match = HEREDOC.search(line)
        if match:
            body = []
            while i < len(lines) and lines[i] != match.group("tag"):
                body.append(lines[i])
                i += 1
            i += 1  # the closing tag
            yield line[: match.start()] + line[match.end() :], "\n".join(body) + "\n"
        else:
            yield line, None


def split(line: str) -> list[str]:
    """Words and operators of one line; a ``#`` comment is dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def simple(tokens: list[str], line: str, heredoc: str | None) -> Iterator[Command]:
    """The simple commands in ``tokens`` (one line's words and operators)."""
    current: list[str] = []
    for token in [*tokens, ";"]:
        if token in OPERATORS:
            if current:
                yield from _command(current, line, heredoc)
                heredoc = None
            current = []
        else:
            current.append(token)


def _command(words: list[str], line: str, heredoc: str | None) -> Iterator[Command]:
    command = Command([], line=line, heredoc=heredoc)
    rest = list(words)
    while rest:
        word = rest.pop(0)
        if REDIRECT.fullmatch(word):
            target = rest.pop(0) if rest else ""
            if word in (">", ">>"):
                command.stdout = target
            continue
        command.words.append(word)
    while command.words and ASSIGNMENT.match(command.words[0]) and len(command.words) > 1:
        name, _, value = command.words.pop(0).partition("=")
        command.env[name] = value
    while command.words and command.words[0] in ("sudo", "ssh"):
        if command.words[0] == "ssh":
            command.via += command.words[:2]
            del command.words[:2]
        else:
            command.via.append(command.words.pop(0))
    for word in command.words:
        for inner in SUBSTITUTION.findall(word):
            yield from commands(inner)
    if command.program == "eval" and len(command.words) == 2:
        return  # eval "$(…)": the substitution above is the command
    if command.words:
        yield command


def commands(text: str) -> Iterator[Command]:
    """Every simple command of a shell text (comment lines and blank lines skipped)."""
    for line, heredoc in logical_lines(text):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        yield from simple(split(line), line.strip(), heredoc)


@dataclass
class Step:
    """One prompt of a console block: the command line and the output shown after it."""

    prompt: str  # "$" or "#"
    line: str
    output: list[str]


def console(text: str) -> list[Step]:
    """A console block as prompts and the output under each. The first line's prompt is the
    block's: ``$ `` (a user) or ``# `` (root), so output lines may begin with the other."""
    lines = text.rstrip("\n").split("\n")
    prompt = lines[0][:2]
    if prompt not in ("$ ", "# "):
        raise ValueError(f"a console block begins with a prompt, not {lines[0]!r}")
    steps: list[Step] = []
    for raw in lines:
        if raw.startswith(prompt):
            steps.append(Step(raw[0], raw[2:], []))
        else:
            steps[-1].output.append(raw)
    return steps
