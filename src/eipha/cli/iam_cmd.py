"""``eipha iam-policy``: the least-privilege IAM policy for this config, as JSON."""

from __future__ import annotations

import json

import click

from eipha.cli.common import load_config, options


@click.command(name="iam-policy")
@click.pass_context
def iam_policy(ctx: click.Context) -> int:
    """Print the least-privilege IAM policy for the config, as JSON. No network.

    Exactly the EC2 actions eipha calls: DescribeAddresses and DescribeNetworkInterfaces
    (which support no resource-level permissions), and AssociateAddress and
    DisassociateAddress limited to the configured EIPs. Attach it to both nodes' instance
    role. Without a config, the EIPs are a wildcard.
    """
    from eipha import iam

    opts = options(ctx)
    config = load_config(opts)
    click.echo(json.dumps(iam.policy(config, opts.region), indent=2))
    return 0
