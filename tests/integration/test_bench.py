"""The benchmark keeps working (one quick repetition) and reports the documented call budget.

Wall times are reported by bench/run.py, never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_runs_and_reports_the_call_budget(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--repeat", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(out.read_text())}
    calls = {name: row["calls"] for name, row in rows.items() if name.startswith("calls: ")}
    assert calls == {
        "calls: start (takeover)": "3 (DescribeAddresses, AssociateAddress, DescribeAddresses)",
        "calls: start (already there)": "1 (DescribeAddresses)",
        "calls: status": "1 (DescribeAddresses)",
        "calls: stop (here)": "2 (DescribeAddresses, DisassociateAddress)",
        "calls: stop (not here)": "1 (DescribeAddresses)",
    }
    for name in ("eipha status (cold)", "aws-cli one-liner", "minimal boto3 script"):
        assert rows[name]["wall"] > 0
        assert rows[name]["rss_mb"] > 0
    assert "measurement" in proc.stdout  # the table
