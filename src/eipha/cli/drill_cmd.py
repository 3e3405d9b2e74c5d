"""``eipha drill``: a failover drill with a timeline, or the whole story in a simulated region."""

from __future__ import annotations

import json

import click

from eipha.cli.common import Seconds, node, timeout_option
from eipha.errors import UsageError
from eipha.exitcodes import CLI, Exit, lookup


@click.command()
@click.argument("eip", required=False, metavar="EIP")
@click.option("--to", "to_node", metavar="NODE", help="The node to move the EIP to.")
@click.option("--back", is_flag=True, help="Then return the EIP to where it was, timed too.")
@click.option("--probe", metavar="URL", help="Probe URL (through the EIP) every 100 ms.")
@click.option(
    "--settle",
    type=Seconds(min=0, max=600),
    default=3.0,
    show_default=True,
    metavar="SECONDS",
    help="With --probe: how long to keep probing after a move when no probe has failed.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option(
    "--simulate",
    is_flag=True,
    help="Play the whole failover story in a simulated "
    "region on loopback: no AWS account, no root.",
)
@timeout_option
@click.pass_context
def drill(
    ctx: click.Context,
    eip: str | None,
    to_node: str | None,
    back: bool,
    probe: str | None,
    settle: float,
    as_json: bool,
    simulate: bool,
    timeout: float | None,
) -> int:
    """Move EIP to NODE the way a takeover does, and print a timeline.

    \b
    eipha drill web-a --to lb-b [--back] [--probe http://203.0.113.10/]
    eipha drill --simulate

    Runs from any host with AWS credentials and a config whose nodes: give
    instance ids. One AssociateAddress onto NODE's binding (the same rule and
    code path as `eipha start` there), then read-back; the timeline shows when
    the call was sent and returned, when the association became visible, and,
    with --probe, the last probe success before, the first failure and the
    first success after. The EIP is never left unassociated: a failed step
    reports where it is. Exit 0 when every step succeeded, 1 when one failed,
    6 when the target node has no free binding IP.
    """
    if simulate:
        if eip or to_node or back or probe:
            raise UsageError("--simulate takes no EIP, --to, --back or --probe")
        from eipha import extras

        extras.require("simulate", "eipha drill --simulate")
        from eipha.sim.story import play

        return play(json_output=as_json)
    if not eip or not to_node:
        raise UsageError("a drill needs an EIP and --to NODE", "or run eipha drill --simulate")
    from eipha import drill as drills
    from eipha.drill_probe import check_url

    if probe:
        check_url(probe)
    report = drills.Drill(
        node(ctx, timeout), eip, to_node, probe=probe, back=back, settle=settle
    ).run()
    click.echo(json.dumps(drills.to_json(report), indent=2) if as_json else drills.to_text(report))
    return int(Exit.OK if report.error is None else lookup(CLI, report.error))
