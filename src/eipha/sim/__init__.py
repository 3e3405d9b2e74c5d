"""Simulated AWS for drills and tests: an IMDSv2 double and a moto-based EC2 region."""

from __future__ import annotations
