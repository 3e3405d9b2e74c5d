"""``eipha sandbox``: a simulated pair on loopback to try every command on by hand."""

from __future__ import annotations

import logging
import shlex

import click

from eipha.cli.common import Seconds, options
from eipha.errors import UsageError
from eipha.exitcodes import Exit

log = logging.getLogger("eipha")

DEFAULT_PORT = 7780  # eipha.sim.sandbox.DEFAULT_PORT, without importing it for --help


@click.command(short_help="A simulated pair on loopback to try every command on.")
@click.option(
    "--env",
    "env_node",
    type=click.Choice(["lb-a", "lb-b"]),
    metavar="NODE",
    help="Print the shell lines that make this shell NODE (lb-a or lb-b) of the running "
    "sandbox, and exit.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=str),
    metavar="DIR",
    help="Where the configs, run directories and state file go [default: "
    "$XDG_RUNTIME_DIR/eipha-sandbox, else /tmp/eipha-sandbox-UID].",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535 - 3),
    default=DEFAULT_PORT,
    show_default=True,
    metavar="N",
    help="Base port: the EC2 API on N, lb-a's and lb-b's metadata on N+1 and N+2, the "
    "router on N+3.",
)
@click.option(
    "--for",
    "for_seconds",
    type=Seconds(min=0.1),
    metavar="SECONDS",
    help="Stop by itself after SECONDS [default: run until Ctrl-C or SIGTERM].",
)
@click.pass_context
def sandbox(
    ctx: click.Context,
    env_node: str | None,
    directory: str | None,
    port: int,
    for_seconds: float | None,
) -> int:
    """Run a simulated pair on 127.0.0.1 to try every eipha command by hand, with no AWS
    account: the simulated EC2 region, lb-a and lb-b with their metadata, web-a and
    web-b each on its home node.

    \b
    eipha sandbox [--dir DIR] [--port N] [--for SECONDS]
    eipha sandbox --env lb-a|lb-b [--dir DIR]

    In the foreground, until Ctrl-C, SIGTERM or SIGHUP (or --for): the simulated
    EC2 region (moto with eipha's private-IP extension, as `eipha drill
    --simulate` uses), one IMDSv2 metadata service per node, a web server per
    node and a router that plays the internet (GET /web-a reaches the node EC2
    says holds web-a). It writes a config and a run directory for each node
    into DIR (owner-only), prints the region, the EIPs, the nodes and what to
    paste, then shows each EC2 request as it arrives, with the node that made it.
    When it stops, it stops every server and removes what it wrote.

    In another shell, `eval "$(eipha sandbox --env lb-a)"` makes that shell lb-a:
    fake credentials (one key per node, never a real one), botocore's own
    metadata lookups off, the EC2 endpoint, the node's metadata endpoint,
    AWS_REGION, EIPHA_CONFIG and EIPHA_RUN_DIR. Then `eipha show`, `status`,
    `start`, `stop`, `drill` and `validate` work against the sandbox as they
    would on a node. `validate` warns that no local interface has the node's
    MAC: this host is not that instance, so the OS side cannot be checked.
    When no sandbox runs, --env says so on stderr, exits 3, and prints lines
    that point the shell at a closed loopback port instead: eval cannot see
    the exit code, and the shell must not go on with real AWS settings.

    The ports are fixed (N to N+3, N 7780 by default), so the lines to paste do
    not change between runs; a sandbox whose ports are taken refuses to start
    and names them.

    \b
    Example, in one shell:
      eipha sandbox
    and in another:
      eval "$(eipha sandbox --env lb-a)"
      eipha status web-b        # not running (exit 3): web-b is on lb-b
      eipha start web-b         # lb-a takes it, onto its secondary IP
      eipha show                # web-b: NOW ON lb-a 10.0.0.12, away

    Exit 0 when stopped by a signal or --for; --env: 0, or 3 when no sandbox
    runs in DIR. 1 when it cannot start (a port taken, a sandbox already
    running in DIR), 4 when DIR is unsafe or a port needs root, 5 when the
    simulate extra is not installed.
    """
    opts = options(ctx)
    if opts.config_path:
        raise UsageError(
            "eipha sandbox takes no --config", "it writes a config for each node into --dir"
        )
    if env_node is not None and (for_seconds is not None or _given(ctx, "port")):
        raise UsageError("--env takes no --port or --for", "it reads them from the sandbox")
    from pathlib import Path

    from eipha.extras import require

    if env_node is None:
        require("simulate", "eipha sandbox")
    from eipha.sim import sandbox as sim

    default = sim.default_dir()
    layout = sim.Layout(Path(directory) if directory else default, port)
    if env_node is not None:
        state = sim.read_state(layout)
        if state is None:
            log.error(
                "no eipha sandbox is running in %s (start one with `eipha sandbox%s`)",
                layout.directory,
                f" --dir {shlex.quote(directory)}" if directory else "",
            )
            click.echo(sim.disarm_lines(env_node))  # for eval, which cannot see the code
            return int(Exit.NOT_RUNNING)
        click.echo(sim.shell_lines(state, env_node))
        return int(Exit.OK)
    hint = "eipha sandbox" + (f" --dir {shlex.quote(directory)}" if directory else "")
    return sim.serve(layout, opts.region or "eu-west-1", for_seconds, click.echo, hint)


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source is not click.core.ParameterSource.DEFAULT
