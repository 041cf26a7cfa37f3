"""``headwater report``: see engine/governance/report.py and docs/governance.md."""

from __future__ import annotations

COMMANDS: tuple = ()
