"""COCO masks are read from the segment stage's shards one shard at a time: the written
annotations carry, for every exported frame and on-screen entity, the best-scoring mask
over all shards (the rule computed here from every shard file read whole), pycocotools
decodes them to the masks written, and only the shards covering the current frame are held."""

from __future__ import annotations

import io
import logging

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from capture import Session, SessionWriter
from pipeline.export import ExportOptions, export_sessions
from pipeline.export._coco_masks import SegmentMasks
from pipeline.export._source import load_session
from pipeline.labels import read_labels
from tests.pipeline.export_kit import SIZE, jittered, labelled

mask_utils = pytest.importorskip("pycocotools.mask")
coco_api = pytest.importorskip("pycocotools.coco")

SHARDS = [(0, 13), (14, 27), (28, 39)]  # frame ranges, as the segment stage writes them


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}


def _parquet(rows: list[dict]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def _write_shards(path, overlap: bool) -> dict[bytes, np.ndarray]:
    """Segment shards of `path` with 1-3 masks per on-screen entity and frame (random
    scores, some tied), text-track rows without entity, and with `overlap` a shard over
    frames of the first, named before it, and an unreadable file. Returns each RLE's
    mask."""
    rng = np.random.default_rng(7)
    labels = read_labels(Session.open(path)).to_pylist()
    masks: dict[bytes, np.ndarray] = {}

    def row(frame: int, entity: str | None, score: float) -> dict:
        mask = np.zeros((SIZE[1], SIZE[0]), bool)
        x, y = rng.integers(0, SIZE[0] - 20), rng.integers(0, SIZE[1] - 20)
        mask[y:y + rng.integers(2, 20), x:x + rng.integers(2, 20)] = True
        rle = _rle(mask)
        masks[rle["counts"].encode()] = mask
        return {"frame_index": frame, "entity_id": entity, "score": score,
                "mask_size": rle["size"], "mask_counts": rle["counts"]}

    files = {}
    for shard, (first, last) in enumerate(SHARDS):
        rows = []
        for label in labels[first:last + 1]:
            for obj in label["objects"]:
                if obj["on_screen"]:
                    scores = rng.choice([0.6, 0.7, 0.9], size=rng.integers(1, 4))
                    rows += [row(label["frame_index"], obj["id"], float(s)) for s in scores]
            rows.append(row(label["frame_index"], None, 0.99))
        files[f"shard-{shard + 1:05d}.parquet"] = _parquet(rows)
    if overlap:
        rows = [row(f, o["id"], 0.9) for f in (10, 11, 12)
                for o in labels[f]["objects"] if o["on_screen"]]
        files["shard-00000.parquet"] = _parquet(rows)  # first by name, not by frame
        files["shard-00004.parquet"] = b"PAR1 not a parquet file"
    writer = SessionWriter.reopen(path)
    for name, data in files.items():
        writer.write_output(f"annotations/segment/{name}", data)
    writer.close()
    return masks


def _best_masks(path) -> dict[tuple[int, str], dict]:
    """The rule over every row of every readable shard, in file and row order: the first
    of the highest-scoring masks of each (frame, true entity)."""
    best: dict[tuple[int, str], tuple[float, dict]] = {}
    for file in sorted((path / "annotations" / "segment").glob("shard-*.parquet")):
        try:
            rows = pq.read_table(file).to_pylist()
        except pa.ArrowException:
            continue
        for r in rows:
            k = (r["frame_index"], r["entity_id"])
            if r["entity_id"] is not None and (k not in best or r["score"] > best[k][0]):
                best[k] = (r["score"], {"size": r["mask_size"], "counts": r["mask_counts"]})
    return {k: rle for k, (_, rle) in best.items()}


# pycocotools' decode passes copy=False to a numpy 2 `__array__` and warns
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
@pytest.mark.parametrize("fps_cap", [None, 20.0])
def test_annotations_carry_the_best_mask_of_every_shard(tmp_path, caplog, fps_cap):
    path = labelled(tmp_path, "s1", jittered(40, 0.0013))
    masks = _write_shards(path, overlap=True)
    best = _best_masks(path)
    with caplog.at_level(logging.WARNING):
        export_sessions([path], "coco", tmp_path / "coco", ExportOptions(fps_cap=fps_cap))
    assert "shard-00004.parquet" in caplog.text  # the unreadable file is named, then skipped

    coco = coco_api.COCO(str(tmp_path / "coco" / "annotations_train.json"))
    frame_of = {i["id"]: i["frame_index"] for i in coco.dataset["images"]}
    got = {(frame_of[a["image_id"]], a["object_id"]): a for a in coco.dataset["annotations"]
           if "segmentation" in a}
    wanted = {(f, o) for f, o in best
              for a in coco.dataset["annotations"]
              if frame_of[a["image_id"]] == f and a["object_id"] == o}
    assert set(got) == wanted and len(wanted) > 20
    assert any(f in (10, 11, 12) for f, _ in wanted)  # the overlapping shard took part
    for k, ann in got.items():
        assert ann["segmentation"] == best[k]
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool),
                                      masks[best[k]["counts"].encode()])


def test_only_the_shards_covering_the_frame_are_held(tmp_path):
    path = labelled(tmp_path, "s1", jittered(40, 0.0013))
    _write_shards(path, overlap=False)
    best = _best_masks(path)
    masks = SegmentMasks(load_session(path, ExportOptions()))
    assert masks.held == 0  # nothing is read before the first frame is asked for
    for frame in range(39):
        got = masks.frame(frame)
        assert masks.held == 1
        assert got == {o: rle for (f, o), rle in best.items() if f == frame}
    with pytest.raises(ValueError, match="after frame 38"):
        masks.frame(3)
    skipping = SegmentMasks(load_session(path, ExportOptions()))
    assert skipping.frame(30) == {o: rle for (f, o), rle in best.items() if f == 30}
    assert skipping.held == 1



def _damaged(rows: list[dict], column: str) -> bytes:
    """An uncompressed parquet file of `rows` whose `column` chunk is overwritten with 0xff:
    that column cannot be read, the others still can."""
    data = _parquet_plain(rows)
    meta = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0)
    chunk = next(meta.column(i) for i in range(meta.num_columns)
                 if meta.column(i).path_in_schema == column)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    damaged = bytearray(data)
    damaged[start:start + chunk.total_compressed_size] = b"\xff" * chunk.total_compressed_size
    return bytes(damaged)


def _parquet_plain(rows: list[dict]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer, compression="none")
    return buffer.getvalue()


def _mask_row(frame: int, entity: str, score: float, counts: str) -> dict:
    return {"frame_index": frame, "entity_id": entity, "score": score,
            "mask_size": [2, 2], "mask_counts": counts}


def test_bad_shards_are_named_with_the_reason_and_the_others_still_read(tmp_path, caplog):
    path = labelled(tmp_path, "s1", jittered(6, 0.0013))
    segment = path / "annotations" / "segment"
    no_counts = [{k: v for k, v in _mask_row(2, "c", 0.9, "C").items() if k != "mask_counts"}]
    files = {
        # first by name: the shards after it are still read
        "shard-00001.parquet": b"PAR1 not a parquet file",
        # frames 0 and 4 only: frames 1-3 have no rows in it while it is held
        "shard-00002.parquet": _parquet([_mask_row(0, "a", 0.6, "A1"), _mask_row(0, "a", 0.8, "A2"),
                                         _mask_row(4, "a", 0.7, "A3")]),
        # its frame_index reads, its mask columns do not: named when frame 2 is reached
        "shard-00003.parquet": _parquet(no_counts),
        # a damaged column that is not one the export reads: the masks are still used
        "shard-00005.parquet": _damaged([_mask_row(1, "b", 0.9, "B1") | {"note": "x" * 40},
                                         _mask_row(2, "b", 0.9, "B2") | {"note": "y" * 40}],
                                        "note"),
    }
    writer = SessionWriter.reopen(path)
    for name, data in files.items():
        writer.write_output(f"annotations/segment/{name}", data)
    writer.close()

    with caplog.at_level(logging.WARNING, logger="pipeline.export._coco_masks"):
        masks = SegmentMasks(load_session(path, ExportOptions()))
        (record,) = caplog.records  # the file, then pyarrow's reason
        message = record.getMessage()
        prefix = f"skipping unreadable mask file {segment / 'shard-00001.parquet'}: "
        assert message.startswith(prefix) and "Parquet magic bytes not found" in message
        caplog.clear()
        rle = {name: {"size": [2, 2], "counts": name} for name in ("A2", "A3", "B1", "B2")}
        assert masks.frame(0) == {"a": rle["A2"]}  # the higher of the two scores
        assert masks.frame(0) == {"a": rle["A2"]}  # the same frame again is allowed
        assert masks.frame(1) == {"b": rle["B1"]}
        assert not caplog.records
        assert masks.frame(2) == {"b": rle["B2"]}
        (record,) = caplog.records
        message = record.getMessage()
        prefix = f"skipping unreadable mask file {segment / 'shard-00003.parquet'}: "
        assert message.startswith(prefix) and "No match for FieldRef.Name(mask_counts)" in message
        assert masks.frame(3) == {}
        assert masks.frame(4) == {"a": rle["A3"]}
