"""eipha's own peer monitor (docs/monitor.md), for users without Heartbeat or keepalived.

:mod:`eipha.monitor.protocol` signs, encodes and checks the heartbeat datagrams;
:mod:`eipha.monitor.decide` is the pure decision core: a view of the pair in, the EIPs this
node should hold and one sentence per EIP out. Importing the package does nothing.
"""

from __future__ import annotations
