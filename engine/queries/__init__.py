"""The operations behind the facade, one module each (OpenFGA's ``pkg/server/commands``).

:class:`~headwater.engine.Engine` builds one of each over its
:class:`~headwater.engine.context.Context` and delegates to it:

- :mod:`.check`: Check, bulk check and explanations (the warm path included);
- :mod:`.expand`: Expand;
- :mod:`.lookups`: LookupResources and LookupSubjects;
- :mod:`.lineage`: effective labels, ancestors and descendants;
- :mod:`.schema`: schema writes, plans, reads and history;
- :mod:`.replay`: replays of recorded decisions.

Writes and the streams (reads, export, import, watch) are ``engine/writes.py``
and ``engine/streams.py``.
"""
