"""``headwater impact``: see engine/governance/impact.py and docs/governance.md."""

from __future__ import annotations

COMMANDS: tuple = ()
