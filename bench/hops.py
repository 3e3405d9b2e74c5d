"""Module hops from ``eipha start`` to the AssociateAddress request, old tree against new.

Runs ``eipha start web-b`` (a takeover: web-b is on lb-b) as a child process of each tree
against the simulated world of ``bench/layering.py``, with hooks installed before eipha is
imported: every thread remembers the thread that started it and the stack it was started
from, and the first AssociateAddress botocore is asked to send records the stack of the
thread sending it, stitched to the stacks its thread was started from. Only frames of
eipha's own modules count; consecutive frames of one module are one; the hops are the
changes of module on the way, and the threads are those the request passed through.

    python bench/hops.py [--before c297f38]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.layering import Cli, trees  # noqa: E402
from eipha.sim.region import SimulatedRegion  # noqa: E402

# The child: hooks first, then the tree's own program.
CHILD = r"""
import json, os, sys, threading, traceback
start = threading.Thread.start
def remembering(self):
    self._bench_parent = threading.current_thread()
    self._bench_stack = traceback.extract_stack()[:-1]
    start(self)
threading.Thread.start = remembering
import botocore.client
call = botocore.client.BaseClient._make_api_call
seen = []
def watched(self, operation, params):
    if operation == "AssociateAddress" and not seen:
        frames, thread, chain = traceback.extract_stack()[:-1], threading.current_thread(), []
        while hasattr(thread, "_bench_stack"):
            chain.append(thread.name)
            frames = thread._bench_stack + frames
            thread = thread._bench_parent
        seen.append({"frames": [f.filename for f in frames], "threads": chain})
    return call(self, operation, params)
botocore.client.BaseClient._make_api_call = watched
try:
    from eipha.program import main
except ImportError:
    from eipha.entry import main
code = main(sys.argv[1:])
with open(os.environ["BENCH_HOPS_OUT"], "w") as out:
    json.dump(seen, out)
sys.exit(code)
"""


def module_of(filename: str, src: Path) -> str | None:
    try:
        rel = Path(filename).resolve().relative_to(src.resolve())
    except ValueError:
        return None
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts).removeprefix("eipha.")


def hops(cli: Cli, tree: str, tmp: Path) -> dict[str, Any]:
    import subprocess

    cli.place("web-b", "lb-b")
    script, out = tmp / f"child-{tree}.py", tmp / f"hops-{tree}.json"
    script.write_text(CHILD)
    env = cli.env(tree) | {"BENCH_HOPS_OUT": str(out)}
    subprocess.run(
        [sys.executable, str(script), "start", "web-b"],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    seen = json.loads(out.read_text())
    if not seen:
        raise SystemExit(f"{tree}: eipha start web-b sent no AssociateAddress")
    modules: list[str] = []
    for filename in seen[0]["frames"]:
        module = module_of(filename, cli.srcs[tree])
        if module and (not modules or modules[-1] != module):
            modules.append(module)
    return {"modules": modules, "hops": len(modules) - 1, "threads": 1 + len(seen[0]["threads"])}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="c297f38", metavar="REV", help="(default c297f38)")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="eipha-hops-") as tmp,
        trees(args.before, None) as srcs,
        SimulatedRegion() as region,
    ):
        cli = Cli(region, Path(tmp), srcs)
        try:
            results = {tree: hops(cli, tree, Path(tmp)) for tree in ("before", "after")}
        finally:
            cli.imds.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for tree, r in results.items():
        chain = " -> ".join(r["modules"])
        print(f"{tree:>6}: {r['hops']} hops, {r['threads']} threads on the way: {chain}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
