"""Reading labels back: missing or damaged files name the command that re-creates them, and
what is written is byte-for-byte reproducible."""

from __future__ import annotations

import pytest

from capture import Session
from capture._synthetic import synthetic_sample
from pipeline._errors import PipelineError
from pipeline.labels import (
    compute_labels,
    labels_summary,
    read_label_events,
    read_labels,
    write_labels,
)
from tests.pipeline.session_kit import make_session


@pytest.fixture
def session(tmp_path):
    samples = [synthetic_sample(i, i / 30) for i in range(12)]
    return Session.open(make_session(tmp_path, samples, range(12), [i / 30 for i in range(12)]))


def test_missing_and_damaged_files_name_stpe_labels(session):
    with pytest.raises(PipelineError, match=r"has no labels.parquet; run `stpe labels .*s1`"):
        read_labels(session)
    assert read_label_events(session) == []
    (session.path / "labels.parquet").write_bytes(b"PAR1 not parquet")
    with pytest.raises(PipelineError, match=r"not a readable parquet .* `stpe labels .*s1`"):
        read_labels(session)
    (session.path / "label_events.jsonl").write_bytes(b'{"kind": "jump"}\n{broken\n')
    with pytest.raises(PipelineError, match=r"label_events.jsonl is corrupt .* `stpe labels"):
        read_label_events(session)


def test_written_labels_are_reproducible_and_keep_their_summary(session):
    labels = compute_labels(session)
    write_labels(session, labels)
    first = [(session.path / n).read_bytes() for n in ("labels.parquet", "label_events.jsonl")]
    write_labels(session, compute_labels(session))
    again = [(session.path / n).read_bytes() for n in ("labels.parquet", "label_events.jsonl")]
    assert first == again
    table = read_labels(session)
    assert labels_summary(table)["frames"] == 12 == table.num_rows
    assert labels_summary(table.replace_schema_metadata({})) == {}
    events = first[1].splitlines()
    assert events and all(line.startswith(b'{"') for line in events)
    keys = [list(e) for e in read_label_events(session)]
    assert all(k == sorted(k) for k in keys)  # keys sorted: stable diffs between runs


def test_long_label_tables_are_written_in_row_groups_of_1024_frames(session):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.labels import Labels

    table = pa.table({"frame_index": pa.array(range(2_500), pa.int64()),
                      "t": pa.array([i / 60 for i in range(2_500)], pa.float64())})
    path, _ = write_labels(session, Labels(table=table, events=[], summary={}))
    meta = pq.read_metadata(path)
    sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    assert sizes == [1024, 1024, 452]
    bounds = [(meta.row_group(g).column(0).statistics.min,
               meta.row_group(g).column(0).statistics.max) for g in range(3)]
    assert bounds == [(0, 1023), (1024, 2047), (2048, 2499)]
