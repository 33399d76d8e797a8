"""Parquet with an image column that Hugging Face `datasets` loads as PIL images.

The image column is `struct{bytes: binary, path: string}` and the schema metadata carries
the `datasets` features (`{"_type": "Image"}`), which is how `datasets` itself stores
images in parquet. Files are split at `--shard-size` MB."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.export._records import iter_records, jpeg, json_ready
from pipeline.export._registry import register
from pipeline.export._source import ExportOptions, SessionData, iter_images
from pipeline.export._vectors import ACTION_NAMES, STATE_NAMES

FILE = "data/{split}-{index:05d}.parquet"
ROW_GROUP = 64
SCHEMA = pa.schema([
    ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
    ("session", pa.string()), ("frame_index", pa.int64()), ("t", pa.float64()),
    ("observation.state", pa.list_(pa.float32(), len(STATE_NAMES))),
    ("action", pa.list_(pa.float32(), len(ACTION_NAMES))),
    ("caption", pa.string()), ("labels", pa.string()),
])
FEATURES = {
    "image": {"_type": "Image"}, "session": {"dtype": "string", "_type": "Value"},
    "frame_index": {"dtype": "int64", "_type": "Value"},
    "t": {"dtype": "float64", "_type": "Value"},
    "observation.state": {"feature": {"dtype": "float32", "_type": "Value"},
                          "length": len(STATE_NAMES), "_type": "Sequence"},
    "action": {"feature": {"dtype": "float32", "_type": "Value"},
               "length": len(ACTION_NAMES), "_type": "Sequence"},
    "caption": {"dtype": "string", "_type": "Value"},
    "labels": {"dtype": "string", "_type": "Value"},
}


def _schema() -> pa.Schema:
    meta = {b"huggingface": json.dumps({"info": {"features": FEATURES}}).encode()}
    return SCHEMA.with_metadata(meta)


class _Files:
    """Parquet files of one split at a time, written row group by row group (memory holds
    one group of JPEGs), a new file before one would pass `limit` bytes of images."""

    def __init__(self, root: Path, limit: float, options: ExportOptions) -> None:
        self.root, self.limit, self.options = root, limit, options
        self.files: dict[str, int] = {}
        self.split, self.group, self.size = "", [], 0.0
        self.writer: pq.ParquetWriter | None = None
        self.path: Path | None = None

    def add(self, split: str, row: dict[str, Any]) -> None:
        size = len(row["image"]["bytes"])
        if split != self.split or (self.size > 0 and self.size + size > self.limit):
            self.close()
            self.split = split
        self.group.append(row)
        self.size += size
        if len(self.group) == ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self.group:
            return
        if self.writer is None:
            index = self.files.get(self.split, 0)
            self.path = self.root / FILE.format(split=self.split, index=index)
            self.writer = pq.ParquetWriter(self.path, _schema())
            self.files[self.split] = index + 1
        self.writer.write_table(pa.Table.from_pylist(self.group, schema=_schema()))
        self.group = []

    def close(self) -> None:
        self._flush()
        if self.writer is not None:
            self.writer.close()
            self.options.finished(self.path)
        self.writer, self.size = None, 0.0


@register("parquet")
def export_parquet(sessions: Sequence[SessionData], root: Path,
                   options: ExportOptions) -> dict[str, Any]:
    """Write `root/data/<split>-NNNNN.parquet` files of labelled frames."""
    (root / "data").mkdir()
    files = _Files(root, options.shard_mb * 1024 * 1024, options)
    rows = 0
    for s in sessions:
        for (_, image), record in zip(iter_images(s, options), iter_records(s), strict=True):
            r = json_ready(record)
            data = jpeg(image)
            files.add(s.split, {
                "image": {"bytes": data, "path": f"{s.name}/{r['frame_index']:06d}.jpg"},
                "session": s.name, "frame_index": r["frame_index"], "t": r["t"],
                "observation.state": list(r["state"].values()),
                "action": list(r["action"].values()),
                "caption": r["caption"], "labels": json.dumps(r["labels"], sort_keys=True)})
            rows += 1
    files.close()
    return {"rows": rows, "files": sum(files.files.values())}
