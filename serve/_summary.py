"""One session's summary for the list: status, duration, frame counts, alignment quality
and what has been derived. Reads the manifest, alignment.json and Parquet footers only, so
a one-hour session costs the same as a one-second one."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from capture import Session, SessionError
from capture._layout import ALIGNED, ALIGNMENT_REPORT, ANNOTATIONS, LABELS, VIDEO
from pipeline.labels import labels_summary

logger = logging.getLogger(__name__)

_ANNOTATION_META = "meta.json"


def _rows(path: Path) -> int | None:
    """Rows of a Parquet file from its footer; None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        logger.warning("cannot read the footer of %s: %s", path, exc)
        return None


def _alignment(path: Path) -> dict[str, Any] | None:
    """The quality part of alignment.json (docs/alignment.md): counts, offset, latency."""
    if not path.is_file():
        return None
    try:
        report = orjson.loads(path.read_bytes())
    except (orjson.JSONDecodeError, OSError) as exc:
        logger.warning("cannot read %s: %s", path, exc)
        return {"error": f"{ALIGNMENT_REPORT} is unreadable; run stpe align again"}
    clock = report.get("clock") or {}
    video = report.get("video") or {}
    return {
        "frames": report.get("frames"), "matched": report.get("matched"),
        "coverage": report.get("coverage"), "methods": report.get("methods") or {},
        "residual_ms": report.get("residual_ms"), "clock_method": clock.get("method"),
        "offset_ms": clock.get("offset_ms"), "offset_std_ms": clock.get("offset_std_ms"),
        "drift_ppm": clock.get("drift_ppm"), "latency_ms": report.get("latency_ms"),
        "latency_bound_ms": report.get("latency_bound_ms"),
        "latency_source": report.get("latency_source"), "fps": video.get("fps"),
        "warnings": list(report.get("warnings") or []),
    }


def _labels(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        meta = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        logger.warning("cannot read the footer of %s: %s", path, exc)
        return {"error": f"{LABELS} is unreadable; run stpe labels again"}
    out: dict[str, Any] = {"rows": meta.metadata.num_rows,
                           "summary": labels_summary(meta.schema_arrow.empty_table())}
    t = meta.schema_arrow.get_field_index("t")
    if t >= 0 and meta.metadata.num_row_groups:
        first = meta.metadata.row_group(0).column(t).statistics
        last = meta.metadata.row_group(meta.metadata.num_row_groups - 1).column(t).statistics
        if first is not None and last is not None and first.has_min_max:
            out["duration_s"] = float(last.max) - float(first.min)
    return out


def _annotations(folder: Path) -> list[str]:
    """Stages whose meta.json exists (a stage is complete once its meta.json is written)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / _ANNOTATION_META).is_file())


def summarize(folder: Path) -> dict[str, Any]:
    """The list entry of the session at `folder`; an unreadable one says why."""
    try:
        session = Session.open(folder)
    except SessionError as exc:
        return {"id": folder.name, "status": "unreadable", "error": str(exc)}
    manifest = session.manifest
    duration = None
    if manifest.stopped is not None:
        duration = (manifest.stopped.host_mono_ns - manifest.created.host_mono_ns) / 1e9
    labels = _labels(folder / LABELS)
    if labels and labels.get("duration_s") is not None:
        duration = labels["duration_s"]
    capture = manifest.capture
    return {
        "id": folder.name, "status": manifest.status,
        "created_wall_ns": manifest.created.host_wall_ns, "duration_s": duration,
        "fps": capture.fps if capture else None,
        "size": [capture.region.width, capture.region.height] if capture else None,
        "place": manifest.plugin.place_name if manifest.plugin else None,
        "video": (folder / VIDEO).is_file(),
        "aligned_rows": _rows(folder / ALIGNED),
        "alignment": _alignment(folder / ALIGNMENT_REPORT),
        "labels": labels, "annotations": _annotations(folder / ANNOTATIONS),
    }
