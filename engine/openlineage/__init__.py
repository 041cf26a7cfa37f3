"""OpenLineage ingestion: events from the pipelines people already run, recorded as lineage and labels.

``spec`` validates events (OpenLineage 2-0-2), ``mapping`` turns dataset and job
names into objects (the ``[openlineage]`` TOML table), ``ingest`` writes a batch
atomically. The HTTP endpoint (``POST /api/v1/lineage``) is in
engine/service/http/openlineage.py, the CLI (``headwater openlineage ingest``) in
engine/cli/openlineage.py; docs/lineage-capture.md is the user's guide.
"""

from .ingest import IngestResult, Plan, ingest, plan
from .mapping import DEFAULT_MAPPING, Mapping, dataset_id, dataset_name, load_mapping
from .spec import SCHEMA_URL, validate_event

__all__ = ["DEFAULT_MAPPING", "SCHEMA_URL", "IngestResult", "Mapping", "Plan", "dataset_id", "dataset_name", "ingest",
           "load_mapping", "plan", "validate_event"]
