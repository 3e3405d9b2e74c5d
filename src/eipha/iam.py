"""The least-privilege IAM policy for a config: exactly the EC2 actions eipha calls.

Resource-level permissions, per the Service Authorization Reference for Amazon EC2
("Actions, resources, and condition keys for Amazon EC2"): DescribeAddresses and
DescribeNetworkInterfaces support none (Resource must be "*"); AssociateAddress accepts the
elastic-ip, network-interface and instance resource types and DisassociateAddress the
elastic-ip and network-interface types, none of them required. So the mutating actions are
limited to the configured EIPs' allocation ids; ENIs and instances stay open within the
region (their ids are not in the config), and the account is a wildcard.
"""

from __future__ import annotations

from typing import Any

from eipha.config import Config
from eipha.ec2 import OPERATIONS


def partition(region: str | None) -> str:
    if region is None:
        return "aws"
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def policy(config: Config, region: str | None = None) -> dict[str, Any]:
    """An IAM policy document (a dict ready for ``json.dumps``)."""
    region = region or config.region
    arn = f"arn:{partition(region)}:ec2:{region or '*'}:*"
    read = sorted(f"ec2:{op}" for op in OPERATIONS if op.startswith("Describe"))
    write = sorted(f"ec2:{op}" for op in OPERATIONS if not op.startswith("Describe"))
    eips = sorted(f"{arn}:elastic-ip/{e.allocation_id}" for e in config.eips.values())
    statements: list[dict[str, Any]] = [
        {"Sid": "EiphaDescribe", "Effect": "Allow", "Action": read, "Resource": "*"},
        {
            "Sid": "EiphaMoveConfiguredEips",
            "Effect": "Allow",
            "Action": write,
            "Resource": [
                *(eips or [f"{arn}:elastic-ip/*"]),
                f"{arn}:network-interface/*",
                f"{arn}:instance/*",
            ],
        },
    ]
    return {"Version": "2012-10-17", "Statement": statements}
