"""Generate eipha's reduced botocore data from the installed botocore.

botocore spends most of an EC2 client's creation parsing the 4,400-shape EC2 service model
and the 1.2 MB endpoints file. eipha calls four operations, so it ships a model holding only
those operations and the shapes they reach, and an endpoints file holding only EC2's entries
(every partition and region kept); the loader finds both first (``eipha.ec2.make_client``).
Signing, retries, endpoint rules and error parsing stay botocore's own.

    python tools/gen_ec2_model.py            # rewrite src/eipha/_data/
    python tools/gen_ec2_model.py --check    # exit 1 if the shipped files are out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from eipha import ec2

OPERATIONS = ec2.OPERATIONS
API_VERSION = "2016-11-15"
DATA = Path(__file__).resolve().parent.parent / "src/eipha/_data"
TARGET = DATA / "ec2" / API_VERSION


def full_model() -> dict[str, Any]:
    import botocore.loaders

    model: dict[str, Any] = botocore.loaders.Loader().load_service_model(
        "ec2", "service-2", API_VERSION
    )
    return model


def full_endpoints() -> dict[str, Any]:
    import botocore.loaders

    endpoints: dict[str, Any] = botocore.loaders.Loader().load_data("endpoints")
    return endpoints


def reduce_endpoints(endpoints: dict[str, Any]) -> dict[str, Any]:
    """Every partition as it is, with only the EC2 service's entries."""
    partitions = []
    for partition in endpoints["partitions"]:
        services = {k: v for k, v in partition.get("services", {}).items() if k == "ec2"}
        partitions.append({**partition, "services": services})
    return {**endpoints, "partitions": partitions}


def _reachable(shapes: dict[str, Any], roots: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        shape = shapes[name]
        refs = [m["shape"] for m in shape.get("members", {}).values()]
        refs += [shape[k]["shape"] for k in ("member", "key", "value") if k in shape]
        todo.extend(refs)
    return seen


def _strip_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_docs(v) for k, v in node.items() if k != "documentation"}
    if isinstance(node, list):
        return [_strip_docs(v) for v in node]
    return node


def reduce_model(model: dict[str, Any]) -> dict[str, Any]:
    ops = {name: model["operations"][name] for name in OPERATIONS}
    roots = [op[k]["shape"] for op in ops.values() for k in ("input", "output") if k in op]
    keep = _reachable(model["shapes"], roots)
    reduced = {
        "version": model.get("version", "2.0"),
        "metadata": model["metadata"],
        "operations": ops,
        "shapes": {name: model["shapes"][name] for name in sorted(keep)},
    }
    return dict(_strip_docs(reduced))


def render(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the shipped model")
    args = parser.parse_args(argv)
    files = {
        TARGET / "service-2.json": render(reduce_model(full_model())),
        DATA / "endpoints.json": render(reduce_endpoints(full_endpoints())),
    }
    stale = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path} is out of date: run python tools/gen_ec2_model.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
