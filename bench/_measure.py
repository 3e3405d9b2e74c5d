"""Run one command and print its wall time, peak RSS (KiB) and exit code as JSON.

A separate small process on purpose: a child forked from the big benchmark process (which
holds moto) would report the parent's memory as its own peak, since Linux keeps the
pre-exec high-water mark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

began = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(
    json.dumps(
        {
            "wall": time.perf_counter() - began,
            "rss_kib": usage.ru_maxrss,
            "code": os.waitstatus_to_exitcode(status),
        }
    )
)
