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

from pipeline.export._records import frame_records, jpeg
from pipeline.export._registry import register
from pipeline.export._source import ExportOptions, SessionData, iter_images
from pipeline.export._vectors import ACTION_NAMES, STATE_NAMES

FILE = "data/{split}-{index:05d}.parquet"
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


@register("parquet")
def export_parquet(sessions: Sequence[SessionData], root: Path,
                   options: ExportOptions) -> dict[str, Any]:
    """Write `root/data/<split>-NNNNN.parquet` files of labelled frames."""
    (root / "data").mkdir()
    limit = options.shard_mb * 1024 * 1024
    files: dict[str, int] = {}
    rows, batch, batch_bytes, split = 0, [], 0, ""

    def flush() -> None:
        nonlocal batch, batch_bytes
        if batch:
            table = pa.Table.from_pylist(batch, schema=_schema())
            index = files.get(split, 0)
            path = root / FILE.format(split=split, index=index)
            pq.write_table(table, path, row_group_size=256)
            options.finished(path)
            files[split], batch, batch_bytes = index + 1, [], 0

    for s in sessions:
        if s.split != split:
            flush()
            split = s.split
        records = frame_records(s)
        for row, image in iter_images(s, options):
            r = records[row]
            data = jpeg(image)
            if batch and batch_bytes + len(data) > limit:
                flush()
            batch.append({
                "image": {"bytes": data, "path": f"{s.name}/{r['frame_index']:06d}.jpg"},
                "session": s.name, "frame_index": r["frame_index"], "t": r["t"],
                "observation.state": s.state[row].tolist(), "action": s.action[row].tolist(),
                "caption": r["caption"], "labels": json.dumps(r["labels"], sort_keys=True)})
            batch_bytes += len(data)
            rows += 1
    flush()
    return {"rows": rows, "files": sum(files.values())}
