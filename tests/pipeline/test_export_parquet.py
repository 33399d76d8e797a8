"""The parquet export's files by hand: where a file ends (its images' bytes up to the
limit, inclusive), which files are reported finished, and the row groups of 64 rows."""

from __future__ import annotations

import pyarrow.parquet as pq

from pipeline.export._parquet import ROW_GROUP, _Files
from pipeline.export._source import ExportOptions
from pipeline.export._vectors import ACTION_NAMES, STATE_NAMES


def _row(i: int, size: int) -> dict:
    return {"image": {"bytes": b"x" * size, "path": f"s/{i:06d}.jpg"}, "session": "s",
            "frame_index": i, "t": i / 30, "observation.state": [0.0] * len(STATE_NAMES),
            "action": [0.0] * len(ACTION_NAMES), "caption": "", "labels": "{}"}


def _indices(path):
    return pq.read_table(path, columns=["frame_index"])["frame_index"].to_pylist()


def test_files_end_where_the_next_image_would_pass_the_limit(tmp_path):
    # limit 300 bytes; train images of 100, 200, 50, 260, 40 bytes, then a val image:
    #   100 + 200 = 300 is not past the limit: one file; + 50 = 350 is: a new file;
    #   50 + 260 = 310 is: a new file; 260 + 40 = 300 is not; the val image its own file
    (tmp_path / "data").mkdir()
    finished = []
    files = _Files(tmp_path, 300.0, ExportOptions(on_file=finished.append))
    for i, size in enumerate((100, 200, 50, 260, 40)):
        files.add("train", _row(i, size))
    files.add("val", _row(5, 10))
    files.close()
    data = tmp_path / "data"
    expected = {"train-00000.parquet": [0, 1], "train-00001.parquet": [2],
                "train-00002.parquet": [3, 4], "val-00000.parquet": [5]}
    assert sorted(p.name for p in data.iterdir()) == sorted(expected)
    for name, rows in expected.items():
        assert _indices(data / name) == rows, name
    # each file reported once, when complete, in the order written
    assert finished == [data / name for name in expected]
    assert files.files == {"train": 3, "val": 1}


def test_rows_are_written_in_groups_of_64(tmp_path):
    (tmp_path / "data").mkdir()
    files = _Files(tmp_path, 1e9, ExportOptions())
    for i in range(ROW_GROUP + 3):
        files.add("train", _row(i, 10))
    files.close()
    meta = pq.ParquetFile(tmp_path / "data/train-00000.parquet").metadata
    assert ROW_GROUP == 64
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [64, 3]
