"""Generate docs/eipha.1, eipha's manual page, from its click command tree.

Every command and option of the page comes from the commands themselves: their help text,
usage, option help and defaults, exactly what ``--help`` prints, so the page cannot say
something the program does not do. The sections no command carries (exit status,
environment, files, completion) are written here.

    python tools/gen_man.py            # rewrite docs/eipha.1
    python tools/gen_man.py --check    # exit 1 if it is out of date

Why not click-man: it writes one page per command (seventeen here), copies help text into
roff without escaping it (a backslash or a line starting with "." would become a roff
request) and loses click's no-rewrap paragraphs (the "\\b" blocks, which eipha uses for its
tables and examples).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from eipha import __version__
from eipha.cli import cli

TARGET = Path(__file__).resolve().parent.parent / "docs" / "eipha.1"
HIDDEN = {"--help", "-h"}  # every command has it; said once


def roff(text: str) -> str:
    """Plain text as roff: backslashes and hyphen-minus escaped (so options copy as
    typed), and a line that would start with a control character protected."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(f"\\&{line}" if line[:1] in (".", "'") else line for line in text.split("\n"))


def paragraphs(help_text: str) -> Iterator[tuple[bool, str]]:
    """(verbatim, text) per paragraph of a click help text: a paragraph that starts with
    click's \\b marker keeps its lines as they are; the others are filled."""
    text = inspect.cleandoc(help_text).split("\f", 1)[0]
    for chunk in re.split(r"\n\s*\n", text):
        if chunk.startswith("\b"):
            yield True, chunk.split("\n", 1)[1] if "\n" in chunk else ""
        elif chunk.strip():
            yield False, " ".join(chunk.split())


def body(help_text: str | None) -> list[str]:
    out = []
    for verbatim, text in paragraphs(help_text or ""):
        if verbatim:
            out += [".PP", ".nf", ".RS 2", roff(text), ".RE", ".fi"]
        else:
            out += [".PP", roff(text)]
    return out


def options(command: click.Command, ctx: click.Context, skip: set[str]) -> list[str]:
    out = []
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option) or set(param.opts) & (HIDDEN | skip):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        out += [".TP", f"\\fB{roff(names)}\\fR", roff(" ".join(help_text.split()))]
    return out


def walk(
    command: click.Command, ctx: click.Context
) -> Iterator[tuple[click.Command, click.Context]]:
    """Every command below ``command`` that is not a group, in the order --help lists them."""
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, click.Context(sub, info_name=name, parent=ctx))
    else:
        yield command, ctx


GLOBAL = {"--config", "--region", "-v", "--verbose", "-q", "--quiet"}

STATIC = r"""
.SH EXIT STATUS
LSB init\-script numbering, so one binary serves systemd, Heartbeat and people:
.TP
.B 0
success (also: start when already there, stop when not here)
.TP
.B 1
failure: an AWS error after retries, IMDS unreachable or failing, the deadline passed, a
racing node won
.TP
.B 2
bad usage
.TP
.B 3
\fBstatus\fR: not running here; \fBsandbox \-\-env\fR, \fBmonitor \-\-status\fR: nothing running
.TP
.B 4
insufficient privilege (UnauthorizedOperation, no credentials, not root where it must be);
for \fBstatus\fR: the state is unknown
.TP
.B 5
a dependency is missing (the message names the pip command)
.TP
.B 6
not configured: an invalid config, an unknown EIP, an allocation id EC2 does not know, a
binding IP absent from the ENI, an unknown interface
.PP
\fBeipha ocf\fR uses the OCF numbers (the same 0 to 6, and 7: not running). Every error is
one line on stderr, \fBeipha: error: \fIwhat\fB (\fIwhy\fB)\fR, also sent to syslog when
stderr is not a terminal.
.SH ENVIRONMENT
.TP
.B EIPHA_CONFIG
the config file, when \fB\-\-config\fR is not given
.TP
.B EIPHA_RUN_DIR
where lock files go (default /run/eipha for root), owner\-only
.TP
.B AWS_ENDPOINT_URL_EC2
the EC2 endpoint (a VPC interface endpoint)
.TP
.B HTTPS_PROXY\fR, \fBNO_PROXY
a proxy for the EC2 API; the metadata service is always reached directly
.TP
.B AWS_EC2_METADATA_SERVICE_ENDPOINT
where instance metadata is read (default http://169.254.169.254/), IMDSv2 only
.TP
.B AWS_REGION\fR, \fBAWS_DEFAULT_REGION
the region, after \fB\-\-region\fR and the config, before the instance's own
.PP
Credentials come from botocore's standard chain: on EC2, the instance role.
.SH FILES
.TP
.I /etc/eipha/eipha.yaml
the config: the same file on both nodes
.TP
.I /etc/default/eipha
VAR=value lines the cluster managers' shims export before running eipha
.TP
.I /etc/ha.d/resource.d/eipha
.TQ
.I /etc/keepalived/eipha\-notify
.TQ
.I /usr/lib/ocf/resource.d/eipha/eipha
the shims, put in place by \fBeipha install\-agents\fR
.SH SHELL COMPLETION
.nf
.RS 2
_EIPHA_COMPLETE=bash_source eipha > ~/.eipha\-complete.bash   # then source it from ~/.bashrc
_EIPHA_COMPLETE=zsh_source eipha > ~/.eipha\-complete.zsh     # then source it from ~/.zshrc
_EIPHA_COMPLETE=fish_source eipha > ~/.config/fish/completions/eipha.fish
.RE
.fi
.SH SEE ALSO
\fBheartbeat\fR(8), \fBkeepalived\fR(8), \fBkeepalived.conf\fR(5), \fBocf\-tester\fR(8),
\fBha.cf\fR(5); README.md and docs/ in eipha's source: the walkthrough from nothing to a
drilled pair on AWS (docs/aws.md), each cluster manager, the configuration reference.
"""


def render() -> str:
    ctx = click.Context(cli, info_name="eipha")
    summary = next(iter(paragraphs(cli.help or "")))[1]
    lines = [
        f'.TH EIPHA 1 "" "eipha {__version__}" "eipha manual"',
        ".nh",  # no hyphenation: names like DescribeNetworkInterfaces stay whole
        ".ad l",
        ".SH NAME",
        f"eipha \\- {roff(summary[0].lower() + summary[1:].rstrip('.'))}",
        ".SH SYNOPSIS",
        ".B eipha",
        "[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGUMENTS\\fR]",
        ".SH DESCRIPTION",
        *body(cli.help)[2:],  # the summary is the NAME line
        ".SH GLOBAL OPTIONS",
        ".PP",
        "Before the command or after it; given in both places, the one after it wins.",
        "Every command also takes \\fB\\-h\\fR, \\fB\\-\\-help\\fR.",
        *options(cli, ctx, set()),
        ".SH COMMANDS",
    ]
    for command, sub in walk(cli, ctx):
        usage = " ".join(command.collect_usage_pieces(sub))
        lines += [f'.SS "{roff(sub.command_path)} {roff(usage)}"', *body(command.help)]
        lines += options(command, sub, GLOBAL)
    text = "\n".join(lines) + STATIC
    return text if text.endswith("\n") else text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/eipha.1 is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python tools/gen_man.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
