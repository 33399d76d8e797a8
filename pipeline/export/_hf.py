"""Hugging Face Hub metadata for the card's YAML header: `configs` (data files per split),
`dataset_info` (features and split sizes), license, task categories and tags, so that
`datasets.load_dataset(DIR)` and the Hub viewer read the files with declared types instead
of guessing them from the first rows (an empty list there would be typed null).

Features are written in the YAML form of `datasets.Features._to_yaml_list` (`dtype`,
`list` with optional `length`, `struct`), derived from arrow schemas."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.export._lerobot_meta import DATA_PATH
from pipeline.export._source import SessionData
from pipeline.export._vectors import ACTION_NAMES, STATE_NAMES

RECORD_LABELS_SKIP = ("frame_index", "t", "caption")  # top-level fields of a record
_DTYPES = {pa.string(): "string", pa.large_string(): "string", pa.float64(): "float64",
           pa.float32(): "float32", pa.int64(): "int64", pa.int32(): "int32",
           pa.bool_(): "bool", pa.binary(): "binary"}


def yaml_type(t: pa.DataType) -> dict[str, Any]:
    """The YAML feature of an arrow type, without its name."""
    if pa.types.is_struct(t):
        return {"struct": [{"name": f.name, **yaml_type(f.type)} for f in t]}
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        inner = yaml_type(t.value_type)
        item = inner["dtype"] if set(inner) == {"dtype"} else inner.get("struct", inner)
        out: dict[str, Any] = {"list": item}
        if pa.types.is_fixed_size_list(t):
            out["length"] = t.list_size
        return out
    if t not in _DTYPES:
        raise TypeError(f"no Hugging Face feature for arrow type {t}")
    return {"dtype": _DTYPES[t]}


def yaml_features(schema: pa.Schema, images: Sequence[str] = ()) -> list[dict[str, Any]]:
    return [{"name": f.name, "dtype": "image"} if f.name in images
            else {"name": f.name, **yaml_type(f.type)} for f in schema]


def record_type(labels: pa.Schema) -> pa.DataType:
    """The arrow type of a WebDataset `{key}.json` record (`_records.iter_records`): state
    and action keys in vector order, then the labels in labels.parquet order."""
    named = pa.struct([(n, pa.float32()) for n in STATE_NAMES])
    actions = pa.struct([(n, pa.float32()) for n in ACTION_NAMES])
    rest = pa.struct([f for f in labels if f.name not in RECORD_LABELS_SKIP])
    return pa.struct([("session", pa.string()), ("frame_index", pa.int64()),
                      ("t", pa.float64()), ("state", named), ("action", actions),
                      ("labels", rest), ("caption", pa.string())])


def _splits(sessions: Sequence[SessionData]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in sessions:
        out[s.split] = out.get(s.split, 0) + s.count
    return out


def hub_metadata(fmt: str, root: Path, sessions: Sequence[SessionData], license_id: str,
                 files: dict[str, int]) -> dict[str, Any]:
    """The card's YAML header as a dict, for format `fmt` written at `root`; `files` are
    the export's files (relative path -> bytes)."""
    from pipeline.export._parquet import SCHEMA as PARQUET_SCHEMA

    splits = _splits(sessions)
    meta: dict[str, Any] = {"license": license_id,
                            "tags": ["stpe", "roblox", "world-model", "video"]}
    if fmt == "lerobot":
        schema = pq.read_schema(root / DATA_PATH.format(chunk_index=0, file_index=0))
        meta["task_categories"] = ["robotics"]
        meta["tags"].append("LeRobot")
        meta["configs"] = [{"config_name": "default",
                            "data_files": [{"split": "train", "path": "data/*/*.parquet"}]}]
        meta["dataset_info"] = {"features": yaml_features(schema.remove_metadata())}
        return meta
    if fmt == "coco":
        meta["task_categories"] = ["object-detection"]
        return meta
    meta["task_categories"] = ["robotics", "image-to-text", "object-detection"]
    if fmt == "webdataset":
        pattern = "{}-*.tar"
        schema = pa.schema([("jpg", pa.binary()), ("json", record_type(sessions[0].labels_schema)),
                            ("vector.npy", pa.list_(pa.float32())),
                            ("__key__", pa.string()), ("__url__", pa.string())])
        features = yaml_features(schema, images=("jpg",))
    else:
        pattern = "data/{}-*.parquet"
        features = yaml_features(PARQUET_SCHEMA, images=("image",))
    meta["configs"] = [{"config_name": "default", "data_files": [
        {"split": name, "path": pattern.format(name)} for name in splits]}]
    meta["dataset_info"] = {"features": features, "splits": [
        {"name": name, "num_examples": rows,
         "num_bytes": sum(size for rel, size in files.items()
                          if fnmatch.fnmatch(rel, pattern.format(name)))}
        for name, rows in splits.items()]}
    return meta
