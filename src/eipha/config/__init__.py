"""The config file: find it, read it strictly, turn it into frozen values.

One module per job:

- :mod:`.locate`: where the config comes from (``--config``, ``EIPHA_CONFIG``, the default
  path) and :func:`load` / :func:`load_brief`, the entry points;
- :mod:`.parse`: a file or a text to a :class:`Config`, every problem collected;
- :mod:`.read`: the hardened YAML reader (syntax, depth, duplicate keys, tags, alias bombs);
- :mod:`.checks` and :mod:`.schema`: value checkers, the little schema language and the
  field tables;
- :mod:`.rules`: the cross-field rules;
- :mod:`.build` and :mod:`.values`: the frozen :class:`Config` and its parts;
- :mod:`.messages`: how a problem names a path and a value.

Importing the package only defines things. Standard library, pyyaml and eipha's pure core
(errors, binding) only.
"""

from __future__ import annotations

from eipha.config.checks import ALLOCATION_ID
from eipha.config.locate import DEFAULT_PATH, ENV_VAR, load, load_brief, not_loaded, resolve_path
from eipha.config.parse import MAX_BYTES, parse_file, parse_text, validate
from eipha.config.values import EMPTY, Config, EipSpec, HealthCheck, MonitorSpec, NodeSpec

__all__ = [
    "ALLOCATION_ID",
    "DEFAULT_PATH",
    "EMPTY",
    "ENV_VAR",
    "MAX_BYTES",
    "Config",
    "EipSpec",
    "HealthCheck",
    "MonitorSpec",
    "NodeSpec",
    "load",
    "load_brief",
    "not_loaded",
    "parse_file",
    "parse_text",
    "resolve_path",
    "validate",
]
