"""Headwater: relationship-based access control for AI data.

The distribution maps the repository's top-level ``dsl/`` and ``engine/`` folders
to ``headwater.dsl`` and ``headwater.engine``.
"""

__version__ = "0.1.0"
