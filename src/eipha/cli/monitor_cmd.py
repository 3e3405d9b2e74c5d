"""``eipha monitor``: run the peer monitor, or show what the running one sees."""

from __future__ import annotations

import json

import click

from eipha.cli.common import load_config, options
from eipha.exitcodes import Exit


@click.command()
@click.option("--status", "show", is_flag=True, help="Show what the running monitor sees.")
@click.option("--json", "as_json", is_flag=True, help="With --status: one JSON document.")
@click.pass_context
def monitor(ctx: click.Context, show: bool, as_json: bool) -> int:
    """Run the peer monitor: authenticated UDP heartbeats between the nodes; a dead, leaving
    or unhealthy peer's home EIPs come to this node's secondary IPs (only while this node is
    healthy and its quorum target answers), and go home after min_hold.

    \b
    Signals: TERM  tell the peers we are leaving (they take over at once), exit
             HUP   reload the config (an invalid one is refused, the old kept)
    --status: peers, last heartbeat ages, verdicts, health, what this node
    claims and where each EIP is. Exit 0, or 3 when no monitor is running.
    """
    from eipha.monitor import state

    if show:
        snapshot = state.read()
        if snapshot is None:
            click.echo("eipha monitor is not running", err=True)
            return int(Exit.NOT_RUNNING)
        click.echo(
            json.dumps(snapshot, indent=2, sort_keys=True) if as_json else state.render(snapshot)
        )
        return int(Exit.OK)
    from eipha.monitor.daemon import Monitor, node_factory

    opts = options(ctx)
    config = load_config(opts)
    return Monitor(config, node_factory(opts.region)).run()
