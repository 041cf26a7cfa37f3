"""Governance over the audit trail: access monitoring, compliance reports, change impact.

- ``monitor.py``  rules over the decision log (first access, denial bursts, volume spikes, declassifications,
  high clearances) and their alerts (``headwater monitor``, ``GovernanceService.Monitor``)
- ``report.py``   the compliance report: per classification value, who is cleared, what carries it, who may view
  (``headwater report``: JSON, CSV, HTML)
- ``impact.py``   change impact: recorded decisions replayed under a proposed schema or relationship changes
  (``headwater schema diff OLD NEW --impact``)

docs/governance.md is the user's guide.
"""
