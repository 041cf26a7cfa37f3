"""The playground: scratch workspaces (schema, relationships, assertions) and what the page asks of them.

- ``workspaces.py``  the workspaces: isolated in-memory engines, bounded in count and size, expiring
- ``rows.py``        a relationship row of the page (columns ↔ text; a declassification's actor and reason)
- ``files.py``       a workspace as a validation file (export, import)
- ``inspect.py``     a check with its explanation tree, a lineage graph with labels and the path of a denial
- ``static/``        the page (built from playground/ at the repository root; committed, so no Node.js is needed)
- ``examples/``      the examples the page can load

The HTTP endpoints are in ``engine/service/http/playground.py``; docs/playground.md describes the page.
"""

from __future__ import annotations

from .inspect import check_json, lineage_json
from .workspaces import Limits, Workspace, Workspaces, diagnostics

__all__ = ["Limits", "Workspace", "Workspaces", "check_json", "diagnostics", "lineage_json"]
