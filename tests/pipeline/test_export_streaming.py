"""Exports read labels.parquet a batch at a time: with batches of a few rows (so every
batch boundary and the rows dropped by --fps-cap fall inside a session) each format holds
exactly the kept rows of the whole table, and the LeRobot statistics are numpy's over the
whole columns. Expected values come from pyarrow reading the whole files here."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline._errors import PipelineError
from pipeline.export import ExportOptions, _source, export_sessions
from pipeline.labels import _io as labels_io
from tests.pipeline.export_kit import jittered, labelled, nan_to_null

QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
CAP = ExportOptions(fps_cap=20)  # drops about every third frame of a 30 fps session


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    parent = tmp_path_factory.mktemp("stream-sessions")
    return [labelled(parent, "s1", jittered(37, 0.0013, drop_every=7)),
            labelled(parent, "s2", jittered(23, 0.0021))]


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(_source, "LABEL_BATCH", 4)


def _kept(path, fps_cap: float) -> list[dict]:
    """The rows of labels.parquet with state, thinned greedily to `fps_cap` by real time
    (docs/exports.md), read whole."""
    rows, last = [], -math.inf
    for row in pq.read_table(path / "labels.parquet").to_pylist():
        if row["K"] is not None and row["t"] - last >= 1 / fps_cap - 1e-6:
            rows.append(row)
            last = row["t"]
    return rows


def test_parquet_rows_are_the_kept_rows_of_the_whole_table(sessions, tmp_path,
                                                           small_batches):
    export_sessions(sessions, "parquet", tmp_path / "pq", CAP)
    table = pq.read_table(tmp_path / "pq" / "data")
    got = table.select(["session", "frame_index", "t", "caption", "labels"]).to_pylist()
    want = [(p.name, r) for p in sessions for r in _kept(p, 20)]
    assert len(got) == len(want) < 60  # rows were dropped, in both sessions
    for row, (name, label) in zip(got, want, strict=True):
        assert (row["session"], row["frame_index"], row["t"], row["caption"]) == \
            (name, label["frame_index"], label["t"], label["caption"])
        rest = {k: v for k, v in label.items() if k not in ("frame_index", "t", "caption")}
        assert json.loads(row["labels"]) == nan_to_null(rest)


def test_webdataset_and_coco_follow_the_whole_table(sessions, tmp_path, small_batches):
    import tarfile

    export_sessions(sessions, "webdataset", tmp_path / "wds", CAP)
    with tarfile.open(tmp_path / "wds" / "train-000000.tar") as tar:
        records = [json.load(tar.extractfile(m)) for m in tar.getmembers()
                   if m.name.endswith(".json")]
    want = [r for p in sessions for r in _kept(p, 20)]
    assert [(r["frame_index"], r["labels"]["objects"]) for r in records] == \
        [(r["frame_index"], nan_to_null(r["objects"])) for r in want]
    export_sessions(sessions, "coco", tmp_path / "coco", CAP)
    text = (tmp_path / "coco" / "annotations_train.json").read_text()
    coco = json.loads(text)
    assert text == json.dumps(coco, sort_keys=True)  # the bytes of one json.dumps
    assert [(i["id"], i["frame_index"]) for i in coco["images"]] == \
        [(k + 1, r["frame_index"]) for k, r in enumerate(want)]
    boxes = [(k + 1, o["id"], o["box_xyxy"]) for k, r in enumerate(want)
             for o in r["objects"] if o["on_screen"]]
    assert len(boxes) > len(want)
    assert [(a["image_id"], a["object_id"], a["bbox"]) for a in coco["annotations"]] == \
        [(i, o, [x0, y0, x1 - x0, y1 - y0]) for i, o, (x0, y0, x1, y1) in boxes]
    assert sorted(p.name for p in (tmp_path / "coco").iterdir()) == \
        ["README.md", "annotations_train.json", "images"]  # no part files left


def test_coco_splits_each_get_their_images(sessions, tmp_path, small_batches):
    options = ExportOptions(splits=(("train", 0.5), ("val", 0.5)))
    export_sessions(sessions, "coco", tmp_path / "coco", options)
    files = {s: json.loads((tmp_path / "coco" / f"annotations_{s}.json").read_text())
             for s in ("train", "val")}
    assert sorted(len(f["images"]) for f in files.values()) == [22, 36]
    assert files["train"]["categories"] == files["val"]["categories"]
    ids = [i["id"] for f in files.values() for i in f["images"]]
    assert sorted(ids) == list(range(1, 59))
    for f in files.values():
        assert {a["image_id"] for a in f["annotations"]} <= {i["id"] for i in f["images"]}


def _numpy_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    out = {"min": values.min(0), "max": values.max(0), "mean": values.mean(0),
           "std": values.std(0)}
    out.update({k: np.quantile(values, q, axis=0) for k, q in QUANTILES.items()})
    return out


def test_lerobot_rows_and_stats_match_numpy_on_whole_columns(sessions, tmp_path,
                                                              monkeypatch):
    whole = tmp_path / "whole"
    export_sessions(sessions, "lerobot", whole)
    monkeypatch.setattr(_source, "LABEL_BATCH", 3)
    out = tmp_path / "small"
    export_sessions(sessions, "lerobot", out)
    data = pq.read_table(out / "data/chunk-000/file-000.parquet")
    assert data.equals(pq.read_table(whole / "data/chunk-000/file-000.parquet"))
    assert pq.ParquetFile(out / "data/chunk-000/file-000.parquet").num_row_groups > 10
    stats = json.loads((out / "meta/stats.json").read_text())
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    checked = 0
    for name in data.column_names:
        if data[name].type in (pa.string(), pa.large_string()):
            assert name not in stats
            continue
        column = data[name].to_pylist()
        values = np.array([v if isinstance(v, list) else [v] for v in column], np.float64)
        for ranged, ep in [(stats[name], None), *[(e, e) for e in episodes]]:
            part = values if ep is None else \
                values[ep["dataset_from_index"]:ep["dataset_to_index"]]
            got = ranged if ep is None else {k: ep[f"stats/{name}/{k}"] for k in
                                             ("min", "max", "mean", "std", *QUANTILES)}
            for stat, want in _numpy_stats(part).items():
                np.testing.assert_allclose(np.ravel(got[stat]), want, rtol=1e-12,
                                           atol=1e-12, err_msg=f"{name} {stat}")
            checked += 1
    assert checked == 3 * len(stats) - 3  # every numeric column, overall and per episode
    assert [e["length"] for e in episodes] == \
        np.bincount(data["episode_index"].to_numpy()).tolist()


def test_labels_are_written_in_row_groups(sessions, tmp_path, monkeypatch):
    from capture import Session
    from pipeline.labels import compute_labels, write_labels

    monkeypatch.setattr(labels_io, "ROW_GROUP", 8)  # the real value is 1024
    session = Session.open(sessions[1])
    path, _ = write_labels(session, compute_labels(session))
    meta = pq.ParquetFile(path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [8, 8, 7]


def test_a_labels_file_cut_short_is_refused(sessions, tmp_path):
    import shutil

    copy = tmp_path / "s1"
    shutil.copytree(sessions[0], copy)
    data = (copy / "labels.parquet").read_bytes()
    (copy / "labels.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(PipelineError, match=r"not a readable parquet.*stpe labels"):
        export_sessions([copy], "parquet", tmp_path / "out")
    table = pq.read_table(sessions[0] / "labels.parquet")
    pq.write_table(table.slice(0, 30), copy / "labels.parquet")  # fewer rows than aligned
    with pytest.raises(PipelineError, match=r"does not match aligned\.parquet"):
        export_sessions([copy], "parquet", tmp_path / "out")
    assert not (tmp_path / "out").exists()
