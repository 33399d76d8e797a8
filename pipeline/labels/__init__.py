"""Exact labels derived from the aligned game state (labels.parquet, label_events.jsonl)."""

from pipeline.labels._compute import Labels, compute_labels
from pipeline.labels._io import (
    iter_labels,
    labels_schema,
    labels_summary,
    read_label_events,
    read_labels,
    write_atomic,
    write_labels,
)
from pipeline.labels._motion import DIRECTIONS

__all__ = [
    "DIRECTIONS",
    "Labels",
    "compute_labels",
    "iter_labels",
    "labels_schema",
    "labels_summary",
    "read_label_events",
    "read_labels",
    "write_atomic",
    "write_labels",
]
