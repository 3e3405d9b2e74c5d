"""docs/development.md's pictures of the code say what the code is: the layout names every
module and package of src/eipha (and nothing that is not there), and the layers figure is
the layers contract of pyproject.toml, layer for layer."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "development.md"
SRC = ROOT / "src" / "eipha"


def figures() -> list[str]:
    return re.findall(r"<!-- doc-test: figure -->\n```text\n(.*?)```", PAGE.read_text(), re.S)


def test_the_layout_names_every_module_and_only_those():
    layout = figures()[0]
    top = [
        line for line in layout.splitlines() if line.startswith("  ") and not line.startswith("   ")
    ]
    # the names are the first column (the descriptions start at column 34)
    named = {word for line in top for word in line[:34].split()}
    there = {p.name for p in SRC.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    there |= {f"{p.name}/" for p in SRC.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert named == there


def test_the_packages_named_inside_the_layout_exist():
    layout = figures()[0]
    for package in ("agents", "monitor", "cli"):
        for name in re.findall(r"\b([a-z_0-9]+\.py)\b", _block(layout, package)):
            assert (SRC / package / name).exists(), f"{package}/{name}"


def _block(layout: str, package: str) -> str:
    lines = layout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [f"{package}/"])
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("     "):
            break
        block.append(line)
    return "\n".join(block)


def test_the_layers_figure_is_the_contract():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in contracts["contracts"] if c["type"] == "layers"]
    wanted = [[m.strip().removeprefix("eipha.") for m in layer.split("|")] for layer in layers]
    drawn = []
    for line in figures()[1].splitlines():
        if not line.startswith(" ") or line.startswith("  "):
            continue  # a description on its own line
        names = re.split(r"\s{2,}", line.strip())[0]
        drawn.append([m.strip() for m in names.split("|")])
    assert drawn == wanted
