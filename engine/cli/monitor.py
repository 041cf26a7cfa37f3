"""``headwater monitor``: see engine/governance/monitor.py and docs/governance.md."""

from __future__ import annotations

COMMANDS: tuple = ()
