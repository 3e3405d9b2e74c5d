"""Front ends for cluster managers: Heartbeat v1 (LSB), keepalived and Pacemaker (OCF).

Each turns its manager's calling convention into calls on one :class:`~eipha.node.Node`
and the outcome into its dialect's exit code (:mod:`eipha.exitcodes`). How an agent gets its
config and node is :mod:`eipha.agents.setup`; what it tells its manager — the first failure
of a start, whether every EIP runs, and the stop rule (a stop succeeds unless the EIP is
provably still here) — is :mod:`eipha.agents.verdicts`.
"""
