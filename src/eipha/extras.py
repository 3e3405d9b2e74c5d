"""eipha's optional extras: which modules each needs, and the error that says how to get them.

``pip install eipha`` brings only what every node needs. ``simulate`` (the simulated region of
``eipha drill --simulate`` and ``eipha sandbox``) and ``metrics`` (the peer monitor's
Prometheus metrics) are extras; a command that needs one checks first, so a missing extra is
one line naming the pip command (exit 5), not an ImportError from deep inside.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping

from eipha.errors import DependencyMissing

EXTRAS: Mapping[str, tuple[str, ...]] = {
    "simulate": ("moto", "flask", "flask_cors", "werkzeug"),
    "metrics": ("prometheus_client",),
}


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (none: it is installed)."""
    return [module for module in EXTRAS[extra] if importlib.util.find_spec(module) is None]


def require(extra: str, needed_by: str) -> None:
    """Raise :class:`DependencyMissing` unless every module of ``extra`` is importable."""
    absent = missing(extra)
    if absent:
        raise DependencyMissing(
            f"{needed_by} needs the '{extra}' extra, which is not installed "
            f"(no module {', '.join(absent)})",
            f"pip install 'eipha[{extra}]'",
        )
