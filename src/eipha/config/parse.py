"""A file or a text to a :class:`Config`, in three steps that raise nothing but
:class:`ConfigError` (and :class:`NotConfigured` for a file that cannot be read):
YAML to plain data (:mod:`.read`), the data against the schema (:mod:`.schema`) and the
cross-field rules (:mod:`.rules`), then the values (:mod:`.build`). Every problem is
collected, each as ``path: message``."""

from __future__ import annotations

import os

from eipha.config import rules, schema
from eipha.config.build import to_config
from eipha.config.messages import show
from eipha.config.read import BAD, load_yaml
from eipha.config.values import Config
from eipha.errors import ConfigError, NotConfigured

MAX_BYTES = 1024 * 1024  # a config is a few KiB; anything this big is a mistake
MAX_PROBLEMS = 50  # shown in a ConfigError; the rest are counted


def parse_file(path: str) -> Config:
    """Read and validate one file (``eipha config check FILE``)."""
    try:
        raw = _read(path)
    except FileNotFoundError:
        raise NotConfigured(f"config file {path} not found") from None
    except OSError as exc:
        raise NotConfigured(f"cannot read config file {path}", exc.strerror or str(exc)) from None
    return _parse_bytes(raw, path)


def _read(path: str) -> bytes:
    """At most MAX_BYTES + 1 bytes. Opened without blocking, so that a FIFO nobody writes to
    reads as empty instead of hanging the command (a ``status`` must never hang)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.set_blocking(fd, True)  # a pipe with a writer (``--config <(...)``) is read whole
        chunks, size = [], 0
        while size <= MAX_BYTES and (chunk := os.read(fd, MAX_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def parse_text(text: str, path: str | None = None) -> Config:
    """Validate YAML text; ``path`` only names it in messages and in :attr:`Config.path`."""
    label = path or "config"
    if len(text) > MAX_BYTES:
        raise _invalid(path, [_too_large(label)])
    data, problems = load_yaml(text, label)
    problems += _validate(data, label)
    if problems:
        raise _invalid(path, problems)
    return to_config(data, path)


def validate(data: object) -> list[str]:
    """Every problem of already-loaded data, each as ``path: message``; empty when valid."""
    return _validate(data, "config")


def _parse_bytes(raw: bytes, path: str) -> Config:
    if len(raw) > MAX_BYTES:
        raise _invalid(path, [_too_large(path)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(path, [f"{path}: not UTF-8 text (bad byte at offset {exc.start})"]) from None
    return parse_text(text, path)


def _too_large(label: str) -> str:
    return f"{label}: larger than 1 MiB; a config file is a few KiB"


def _invalid(path: str | None, problems: list[str]) -> ConfigError:
    rest = len(problems) - MAX_PROBLEMS
    shown = problems[:MAX_PROBLEMS]
    if rest > 0:
        shown.append(f"... and {rest} more problem{'s' if rest != 1 else ''}")
    error = ConfigError(f"invalid config {path}" if path else "invalid config", shown)
    error.why = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return error


def _validate(data: object, top: str) -> list[str]:
    if data is BAD:
        return []
    if data is None:
        return [f"{top}: is empty; expected a mapping with at least 'eips'"]
    if not isinstance(data, dict):
        return [f"{top}: must be a mapping of settings, got {show(data)}"]
    out: list[str] = []
    schema.check(schema.TOP, data, "", out)
    for rule in rules.RULES:
        rule(data, out)
    return out
