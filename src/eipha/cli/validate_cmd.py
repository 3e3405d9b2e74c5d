"""``eipha validate``: is this node ready to take over?"""

from __future__ import annotations

import json

import click

from eipha.cli.common import runtime, timeout_option, verbosity_options


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@timeout_option
@verbosity_options
@click.pass_context
def validate(ctx: click.Context, as_json: bool, timeout: float | None) -> int:
    """Check this node: config, IMDSv2, its ENI, every binding IP (on the ENI, and on the OS
    interface), net.ipv4.ip_nonlocal_bind, and IAM permissions by DryRun calls. Changes
    nothing.

    Prints a checklist; a warning names its fix. On a host that is not the instance
    (no local interface has the ENI's MAC: `eipha sandbox`, a network namespace of its
    own) the OS interface checks are one warning saying so. Exit 0 when every check
    passes (warnings allowed), 4 when a permission is missing, 6 when the config or the
    ENI is wrong, 1 otherwise (IMDS or the API unreachable).
    """
    from eipha import validate as checks

    rt = runtime(ctx, timeout)
    result = checks.run(rt)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {"check": c.name, "status": c.status.value.lower(), "detail": c.detail}
                    for c in result
                ],
                indent=2,
            )
        )
    else:
        click.echo(checks.render(result))
    return int(checks.exit_code(result))
