"""A probe for bench/layering.py, imported by Python at start-up when this directory is first
on PYTHONPATH and EIPHA_BENCH_PROBE names a file. It knows nothing of eipha's modules: it
counts what any Python program does, through public hooks only.

One line per event, appended to that file the moment it happens (``time.monotonic()``, the
clock every process of the machine shares, then the kind and a detail), so that a process
that ends with ``os._exit`` loses nothing:

* ``thread``: a call of ``threading.Thread.start`` (detail: the thread's name);
* ``open``: an ``open`` audit event (``open()``, ``os.open()``, …) for the file named by
  EIPHA_BENCH_WATCH (detail: the path as given);
* ``session``: a ``botocore.session.Session`` created (patched when botocore.session is
  first imported, whenever that is);
* ``log``: a log record of level INFO or above (detail: its message), timestamped when it is
  made.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

OUT = os.environ.get("EIPHA_BENCH_PROBE", "")
WATCH = os.environ.get("EIPHA_BENCH_WATCH", "")


def record(kind: str, detail: str = "") -> None:
    line = f"{time.monotonic():.6f} {kind} {detail}".replace("\n", " ") + "\n"
    fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line.encode("utf-8", "replace"))
    finally:
        os.close(fd)


def count_threads() -> None:
    start = threading.Thread.start

    def counted(self: threading.Thread) -> None:
        record("thread", self.name)
        start(self)

    threading.Thread.start = counted  # type: ignore[method-assign]


def count_opens() -> None:
    watched = {os.path.abspath(WATCH), os.path.realpath(WATCH)}

    def hook(event: str, args: tuple[Any, ...]) -> None:
        path = args[0] if event == "open" else None
        if isinstance(path, str) and path and os.path.abspath(path) in watched:
            record("open", path)

    sys.addaudithook(hook)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Runs ``patch(module)`` right after the module ``name`` is first executed."""

    def __init__(self, name: str, patch: Callable[[ModuleType], None]) -> None:
        self.name, self.patch = name, patch

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module
        patch = self.patch

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            patch(module)

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def count_sessions(module: ModuleType) -> None:
    cls = module.Session
    init = cls.__init__

    def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        record("session")
        init(self, *args, **kwargs)

    cls.__init__ = counted


def timestamp_logs() -> None:
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        item = make(*args, **kwargs)
        if item.levelno >= logging.INFO:
            try:
                message = item.getMessage()
            except (TypeError, ValueError):  # logging reports a bad record itself, later
                message = str(item.msg)
            record("log", message)
        return item

    logging.setLogRecordFactory(factory)


if OUT:
    count_threads()
    if WATCH:
        count_opens()
    sys.meta_path.insert(0, _PatchOnImport("botocore.session", count_sessions))
    timestamp_logs()
