"""How a problem names what is wrong: paths like ``eips.web-a.home``, offending values
shown short and quoted, lists of known names, "did you mean" for unknown keys."""

from __future__ import annotations

import re
from collections.abc import Collection


def clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show(value: object) -> str:
    """The offending value for a message: strings quoted, containers by kind, short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return "a mapping" if isinstance(value, dict) else "a list"
    if isinstance(value, int) and abs(value) >= 10**30:
        return "a huge number"
    if isinstance(value, str):
        return repr(clip(value))
    return clip(repr(value))


_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}")


def join(path: str, key: object) -> str:
    """``eips`` + ``web-a`` -> ``eips.web-a``; odd keys are quoted: ``nodes['lb a']``."""
    if isinstance(key, str) and _PLAIN_SEGMENT.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{show(key)}]"


def _names(known: Collection[str]) -> str:
    """Names for a message, odd ones quoted (a newline in a key must not break the line)."""
    shown = [n if _PLAIN_SEGMENT.fullmatch(n) else show(n) for n in list(known)[:10]]
    return ", ".join(shown) + (", ..." if len(known) > 10 else "")


def not_one_of(value: str, known: Collection[str], what: str) -> str:
    return f"{show(value)} is not one of the {what} ({_names(known)})"


def unknown_key(path: str, key: str, allowed: Collection[str]) -> str:
    import difflib  # only for an invalid config: not paid by every valid load

    close = difflib.get_close_matches(key, list(allowed), n=1) if len(key) < 100 else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{join(path, key)}: unknown key {show(key)}{hint}"
