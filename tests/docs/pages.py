"""A page's files and config, laid out in a temporary directory so its commands can run.

A config block whose first line names a file (``# /etc/eipha/eipha.yaml``, ``# eipha.yaml,
…``, ``# /tmp/eipha-broken.yaml …``) is that file: relative names go into the page's working
directory, absolute ones under ``root`` (``/etc/x`` is ``root/etc/x``), and a command's words
and output are translated between the two. ``/etc/eipha/eipha.yaml`` is the page's whole
config (fragments merged in), else README.md's: the default config of every command on the
page, through ``EIPHA_CONFIG``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.docs import markdown as md

DEFAULT = "/etc/eipha/eipha.yaml"


def merge(base: Mapping[str, Any], part: Mapping[str, Any]) -> dict[str, Any]:
    """``part`` laid over ``base``, mapping by mapping."""
    out = copy.deepcopy(dict(base))
    for key, value in part.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def whole_config(page: Path) -> dict[str, Any] | None:
    """The page's first whole eipha config, with none of its fragments."""
    for block in md.of_kind(md.CONFIG, page):
        return dict(yaml.safe_load(block.text))
    return None


def effective_config(page: Path) -> dict[str, Any]:
    """The config the page's commands run with: its whole config and every fragment on it,
    else README.md's."""
    config = whole_config(page)
    if config is None:
        return effective_config(md.REPO / "README.md")
    for block in md.of_kind(md.CONFIG_FRAGMENT, page):
        config = merge(config, yaml.safe_load(block.text))
    return config


@dataclass
class Layout:
    """Where a page's files are: ``cwd`` for relative names, ``root`` for absolute ones."""

    page: Path
    base: Path
    files: dict[str, Path] = field(default_factory=dict)  # the page's name -> real path

    @property
    def cwd(self) -> Path:
        return self.base / "cwd"

    @property
    def root(self) -> Path:
        return self.base / "root"

    def real(self, name: str) -> Path:
        return self.root / name.lstrip("/") if name.startswith("/") else self.cwd / name

    def write(self, name: str, text: str) -> Path:
        path = self.real(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self.files[name] = path
        return path

    def word(self, word: str) -> str:
        """A word of a command, its absolute page paths made real (files of the page, and
        anything under /tmp, which a test must not share with the machine)."""
        if word in self.files and word.startswith("/"):
            return str(self.files[word])
        if word.startswith("/tmp/"):
            return str(self.real(word))
        for prefix in ("--root=", "--config="):
            if word.startswith(prefix):
                return prefix + self.word(word[len(prefix) :])
        return word

    def back(self, line: str) -> str:
        """An output line with real paths written as the page writes them."""
        for name, path in sorted(self.files.items(), key=lambda kv: -len(str(kv[1]))):
            if name.startswith("/"):
                line = line.replace(str(path), name)
        return line.replace(str(self.root / "tmp"), "/tmp").replace(str(self.cwd) + "/", "")


def lay_out(page: Path, base: Path) -> Layout:
    """The page's files in ``base``: every named config block, and its effective config as
    ``/etc/eipha/eipha.yaml``."""
    layout = Layout(page, base)
    layout.cwd.mkdir(parents=True, exist_ok=True)
    layout.root.mkdir(parents=True, exist_ok=True)
    for block in [*md.of_kind(md.CONFIG, page), *md.of_kind(md.BROKEN_CONFIG, page)]:
        if block.path and block.path != DEFAULT:
            layout.write(block.path, block.text)
    layout.write(DEFAULT, yaml.safe_dump(effective_config(page), sort_keys=False))
    return layout
