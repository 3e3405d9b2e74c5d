"""The ``eipha`` command line: a click group whose commands defer every heavy import.

``main(argv) -> int`` is the entry point: it runs the group without click's own exit
handling and turns every error into one line on stderr and an exit code from
:mod:`eipha.exitcodes`. Nothing below the front ends calls ``sys.exit``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import click

from eipha import __version__, logsetup
from eipha.cli import (
    agents_cmd,
    config_cmd,
    drill_cmd,
    iam_cmd,
    install_agents_cmd,
    monitor_cmd,
    sandbox_cmd,
    secondary_cmd,
    show,
    start_stop_cmd,
    validate_cmd,
)
from eipha.cli.common import Group, Options, with_global_options
from eipha.errors import EiphaError
from eipha.exitcodes import CLI, Exit, lookup

log = logging.getLogger("eipha")

EPILOG = """\b
Exit codes: 0 success, 1 failure (AWS or IMDS error, deadline passed),
2 bad usage, 3 not running (status), 4 insufficient privilege (status:
unknown), 5 missing dependency, 6 not configured.
Config: /etc/eipha/eipha.yaml, or --config / EIPHA_CONFIG.
"""


# click >= 8.2 raises this for a group run without a command (its message is the whole help)
_NO_COMMAND = getattr(click.exceptions, "NoArgsIsHelpError", ())


@click.group(cls=Group, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="eipha")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Keep a pair of EC2 load balancers reachable by moving Elastic IPs between them.

    eipha is the part that moves the EIPs; Heartbeat, keepalived, Pacemaker, its own peer
    monitor or a person decides when. --config, --region, -v and -q go before the command
    or after it (the one after it wins).
    """
    ctx.ensure_object(Options)


# the global options, here and (Group) on every command added: before or after its name
with_global_options(cli, first=True)


cli.add_command(start_stop_cmd.start)
cli.add_command(start_stop_cmd.stop)
cli.add_command(start_stop_cmd.status)
cli.add_command(show.show)
cli.add_command(config_cmd.config)
cli.add_command(drill_cmd.drill)
cli.add_command(validate_cmd.validate)
cli.add_command(iam_cmd.iam_policy)
cli.add_command(secondary_cmd.secondary_ips)
cli.add_command(agents_cmd.heartbeat)
cli.add_command(agents_cmd.keepalived)
cli.add_command(agents_cmd.ocf)
cli.add_command(monitor_cmd.monitor)
cli.add_command(install_agents_cmd.install_agents)
cli.add_command(sandbox_cmd.sandbox)


def _usage_line(exc: click.UsageError) -> str:
    hint = f"see '{exc.ctx.command_path} --help'" if exc.ctx else "see 'eipha --help'"
    if isinstance(exc, _NO_COMMAND) and exc.ctx and isinstance(exc.ctx.command, click.Group):
        names = ", ".join(exc.ctx.command.list_commands(exc.ctx))
        return f"missing command, one of: {names} ({hint})"
    return f"{exc.format_message()} ({hint})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run eipha with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    logsetup.configure(0)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=args, prog_name="eipha", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        log.error("%s", _usage_line(exc))
        return int(Exit.USAGE)
    except click.ClickException as exc:
        log.error("%s", exc.format_message())
        return int(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        log.error("interrupted")
        return 130
    except EiphaError as exc:
        log.error("%s", exc)
        return int(lookup(CLI, exc))
    except Exception as exc:  # a bug: one line, no traceback unless -v
        log.error("internal error: %r (please report this)", exc, exc_info=log.isEnabledFor(10))
        return int(Exit.FAILURE)
    return int(result or 0)
