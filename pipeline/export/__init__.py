"""Dataset exporters: LeRobot v3.0, WebDataset, Parquet (Hugging Face `datasets`), COCO."""

from pipeline.export import _coco, _lerobot, _parquet, _webdataset  # noqa: F401  (register)
from pipeline.export._registry import EXPORTERS, export_sessions, register
from pipeline.export._source import ExportOptions
from pipeline.export._vectors import ACTION_NAMES, STATE_NAMES

__all__ = [
    "ACTION_NAMES",
    "EXPORTERS",
    "STATE_NAMES",
    "ExportOptions",
    "export_sessions",
    "register",
]
