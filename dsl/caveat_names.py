"""The caveat-name rule, one for schemas and relationships (a pure module: no parser, no compiler).

The compiler (``compiler/names.py``) refuses a caveat declared with a name no relationship could use, and
``headwater.engine.relationships`` refuses a relationship naming such a caveat; both ask :func:`caveat_name_problem`.
It lives outside ``compiler/`` so that reading a relationship never imports the parser (the gRPC client,
``headwater.client``, parses relationships and stays light).

Example::

    >>> caveat_name_problem("ab") is None, caveat_name_problem("-ab") == CAVEAT_NAME_RULE
    (True, True)
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["CAVEAT_NAME_RULE", "caveat_name_problem"]

# It is SpiceDB's API rule for the caveat named on a relationship (ContextualizedCaveat.caveat_name, measured on
# v1.54: `ab`, `AB`, `_x`, `1ab` and `a/b` are accepted, `-ab`, `/ab` and 129 characters are not). SpiceDB's
# schema compiler accepts any identifier, 200 characters included, but no relationship could then name the
# caveat, so Headwater refuses such a caveat where it is declared. (`|` and `-` cannot be written in a schema.)
_CAVEAT_NAME: Final = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9/_|\-]{0,127}")
#: Why a caveat name is refused, in words.
CAVEAT_NAME_RULE: Final = ("caveat names are 1 to 128 characters of letters a-z and A-Z, digits, _, /, | and -, "
                           "starting with a letter, a digit or _")


def caveat_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a caveat (``CAVEAT_NAME_RULE``), or None when it can.

    Example::

        >>> caveat_name_problem("ab") is None, caveat_name_problem("-ab") == CAVEAT_NAME_RULE
        (True, True)
    """
    if not isinstance(name, str):
        return "must be a string"
    return None if _CAVEAT_NAME.fullmatch(name) else CAVEAT_NAME_RULE
