"""Per-frame records shared by the file-per-frame formats: the JPEG bytes of a frame and a
JSON-ready dict of its state, action, labels and caption."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from pipeline.export._source import SessionData, label_rows
from pipeline.export._vectors import ACTION_NAMES, STATE_NAMES

JPEG_QUALITY = 95


def jpeg(image: np.ndarray) -> bytes:
    """RGB image -> JPEG bytes (deterministic for the same pixels)."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def json_ready(value: Any) -> Any:
    """NaN and infinities -> None, recursively, so `json.dumps` writes valid JSON (orjson
    writes them as null itself)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    return value


def iter_records(data: SessionData) -> Iterator[dict[str, Any]]:
    """One record per kept frame, in order (session, frame_index, t, state, action,
    labels, caption), read from labels.parquet a batch of rows at a time so memory does not
    grow with the session's length. Values are as read: NaN stays NaN."""
    for i, row in enumerate(label_rows(data)):
        yield {
            "session": data.name, "frame_index": row["frame_index"], "t": row["t"],
            "state": dict(zip(STATE_NAMES, data.state[i].tolist(), strict=True)),
            "action": dict(zip(ACTION_NAMES, data.action[i].tolist(), strict=True)),
            "labels": {k: v for k, v in row.items()
                       if k not in ("frame_index", "t", "caption")},
            "caption": row["caption"]}


def key(data: SessionData, frame_index: int) -> str:
    """The sample key of a frame: `<session id>_<frame index, 6 digits>` (no dots)."""
    return f"{data.name.replace('.', '-')}_{frame_index:06d}"
