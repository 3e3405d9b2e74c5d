"""Serve an IMDSv2 double from a JSON file, reloading it when it changes: the double in a
network namespace, where the test that owns the file cannot reach a Python object.

    ip netns exec NS python -m eipha.sim.imds_file --data FILE --port-file FILE
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from eipha.sim.imds_double import ImdsDouble


def serve_file(
    data_file: str, host: str = "127.0.0.1", port: int = 0, port_file: str | None = None
) -> None:
    """Serve the JSON object in ``data_file`` (path -> value) until SIGTERM/SIGINT, reloading
    it whenever it changes. For tests that need the double inside a network namespace:
    ``ip netns exec NS python -m eipha.sim.imds_file --data FILE --port-file FILE``.
    ``{"__down__": "1"}`` in the file makes every request fail with 500 (an outage)."""
    import json
    import os
    import signal

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def load() -> tuple[float, dict[str, str]]:
        with open(data_file) as f:
            return os.fstat(f.fileno()).st_mtime, dict(json.load(f))

    mtime, data = load()
    down = bool(data.pop("__down__", None))
    double = ImdsDouble(data, host=host, port=port).start()
    double.down = down
    try:
        if port_file:
            tmp = f"{port_file}.tmp"
            with open(tmp, "w") as f:
                f.write(str(double.endpoint.rsplit(":", 1)[1].rstrip("/")))
            os.replace(tmp, port_file)
        while not stop.wait(0.05):
            if os.stat(data_file).st_mtime != mtime:
                mtime, data = load()
                double.down = bool(data.pop("__down__", None))
                double.update(data)
    finally:
        double.stop()


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Serve an IMDSv2 double from a JSON file.")
    parser.add_argument("--data", required=True, help="JSON object: path -> value")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="write the port here once listening")
    args = parser.parse_args(argv)
    serve_file(args.data, args.host, args.port, args.port_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
