"""eipha: move AWS Elastic IPs between a pair of EC2 load balancers when one fails."""

from __future__ import annotations

__version__ = "0.1.0"
