"""Where the config comes from: ``--config``, then ``EIPHA_CONFIG``, then
:data:`DEFAULT_PATH`; and the entry points that load the config in effect."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace

from eipha.config.parse import parse_file
from eipha.config.values import EMPTY, Config
from eipha.errors import ConfigError, NotConfigured

DEFAULT_PATH = "/etc/eipha/eipha.yaml"
ENV_VAR = "EIPHA_CONFIG"


def resolve_path(explicit: str | None, env: Mapping[str, str]) -> tuple[str, bool]:
    """Which file to read, and whether it was named explicitly: ``--config`` first, then a
    non-empty ``EIPHA_CONFIG``, then :data:`DEFAULT_PATH`."""
    if explicit is not None:
        return explicit, True
    if env.get(ENV_VAR):
        return env[ENV_VAR], True
    return DEFAULT_PATH, False


def load(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The config in effect. A missing default file means "no config" (:data:`EMPTY`, with
    the path looked at); a missing file named explicitly is :class:`NotConfigured`; an
    invalid one :class:`ConfigError`."""
    path, named = resolve_path(explicit, os.environ if env is None else env)
    if not named and _missing(path):
        return replace(EMPTY, looked_at=path)
    return parse_file(path)


def not_loaded(config: Config, how: str = f"set --config or {ENV_VAR}") -> str | None:
    """When no config file was found: that, where eipha looked, and ``how`` to name one
    (for a message's "why"); None when a config is loaded or was given in memory."""
    if config.path is not None or config.looked_at is None:
        return None
    return f"no config loaded: looked at {config.looked_at}; {how}"


def load_brief(explicit: str | None = None) -> Config:
    """:func:`load`, with an invalid config reported in one line (the first problem and a
    count), as commands other than ``config check`` report it."""
    try:
        return load(explicit)
    except ConfigError as exc:
        first = exc.problems[0] if exc.problems else ""
        more = len(exc.problems) - 1
        tail = f"; and {more} more, see 'eipha config check'" if more > 0 else ""
        raise NotConfigured(exc.what, f"{first}{tail}") from None


def _missing(path: str) -> bool:
    """Only "no such file" is missing; any other failure is reported by reading it."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False
