"""Reading the aligned table into arrays: nulls, missing columns, entities and refusals,
against tables written by hand."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from capture import Session
from capture._synthetic import synthetic_sample
from pipeline._errors import PipelineError
from pipeline.labels._inputs import (
    entities,
    frame_inputs,
    scalars,
    string_lists,
    strings,
    vectors,
)
from tests.pipeline.session_kit import make_session

TABLE = pa.table({
    "v": pa.array([[1.0, 2.0], None, [5.0, 6.0]], pa.list_(pa.float64())),
    "nothing": pa.array([None, None, None], pa.list_(pa.float64())),
    "n": pa.array([1, None, 3], pa.int32()),
    "s": pa.array(["a", None, "c"]),
    "keys": pa.array([["W", "A"], None, []], pa.list_(pa.string())),
})


def test_vectors_scalars_and_strings_fill_nulls():
    v = vectors(TABLE, "v", 2)
    np.testing.assert_array_equal(v[[0, 2]], [[1.0, 2.0], [5.0, 6.0]])
    assert v.dtype == np.float64 and np.isnan(v[1]).all()
    for name, width in (("nothing", 4), ("missing", 3)):  # all null, or no column at all
        empty = vectors(TABLE, name, width)
        assert empty.shape == (3, width) and np.isnan(empty).all()
    assert np.isnan(vectors(TABLE.slice(0, 0), "v", 2)).shape == (0, 2)
    assert vectors(TABLE.slice(2, 1), "v", 2).tolist() == [[5.0, 6.0]]  # a one-frame table
    holes = pa.table({"v": pa.array([[1.0, None], [3, 4]], pa.list_(pa.float64()))})
    np.testing.assert_array_equal(vectors(holes, "v", 2), [[1.0, np.nan], [3.0, 4.0]])
    n = scalars(TABLE, "n")
    assert n.dtype == np.float64 and n[[0, 2]].tolist() == [1.0, 3.0] and np.isnan(n[1])
    assert np.isnan(scalars(TABLE, "missing")).all() and len(scalars(TABLE, "missing")) == 3
    assert strings(TABLE, "s").tolist() == ["a", "", "c"]
    assert strings(TABLE, "missing").tolist() == ["", "", ""]
    assert strings(TABLE, "missing").dtype == strings(TABLE, "s").dtype == object
    assert string_lists(TABLE, "keys") == [["W", "A"], [], []]
    assert string_lists(TABLE, "missing") == [[], [], []]


def test_vectors_of_the_wrong_width_are_refused_whole():
    with pytest.raises(PipelineError) as refused:
        vectors(TABLE, "v", 3)
    assert str(refused.value) == ("column 'v' must hold 3 numbers per row; re-create "
                                  "aligned.parquet with `stpe align`")
    ragged = pa.table({"v": pa.array([[1.0, 2.0], [1.0]], pa.list_(pa.float64()))})
    with pytest.raises(PipelineError, match="must hold 2 numbers"):
        vectors(ragged, "v", 2)


def test_entities_flatten_to_one_row_per_frame_and_entity():
    item = pa.struct([("id", pa.string()), ("name", pa.string()),
                      ("cframe", pa.list_(pa.float64())), ("size", pa.list_(pa.float64()))])
    box = [float(i) for i in range(12)]
    table = pa.table({"entities": pa.array([
        [{"id": "a", "name": "Door", "cframe": box, "size": [1.0, 2.0, 3.0]}],
        [],
        [{"id": "a", "name": "Door", "cframe": box, "size": [1.0, 2.0, 3.0]},
         {"id": "b", "name": None, "cframe": None, "size": [4.0, 5.0, 6.0]}],
    ], pa.list_(item))})
    got = entities(table)
    assert got.frame.tolist() == [0, 2, 2] and got.frame.dtype == np.int64
    one = entities(table.slice(2, 1))  # a table of one frame
    assert one.frame.tolist() == [0, 0] and one.id.tolist() == ["a", "b"]
    assert got.id.tolist() == ["a", "a", "b"] and got.name.tolist() == ["Door", "Door", ""]
    assert got.cframe.shape == (3, 12) and got.cframe[1].tolist() == box
    assert np.isnan(got.cframe[2]).all()
    assert got.size.tolist() == [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    for empty in (entities(TABLE), entities(table.slice(0, 0))):
        assert empty.frame.shape == (0,) and empty.cframe.shape == (0, 12)
        assert empty.frame.dtype == np.int64 and empty.id.dtype == empty.name.dtype == object
        assert empty.size.shape == (0, 3) and len(empty.id) == len(empty.name) == 0


@pytest.fixture
def session_path(tmp_path):
    samples = [synthetic_sample(i, i / 60) for i in range(6)]
    return make_session(tmp_path, samples, [0, 2, None, 4], [0.0, 1 / 30, 2 / 30, 3 / 30])


def test_frame_inputs_read_the_columns_labels_need(session_path):
    inputs = frame_inputs(Session.open(session_path))
    assert inputs.n == 4 and inputs.frame_index.tolist() == [0, 1, 2, 3]
    assert inputs.frame_index.dtype == np.int64
    assert inputs.has_state.tolist() == [True, True, False, True]
    assert inputs.frame_size.tolist() == [[1280.0, 720.0]] * 4
    sample = synthetic_sample(2, 2 / 60)
    np.testing.assert_array_equal(inputs.cam_cframe[1], sample["camera"]["cframe"])
    np.testing.assert_array_equal(inputs.root_velocity[1],
                                  sample["character"]["root"]["velocity"])
    character = sample["character"]
    assert inputs.humanoid_state[1] == character["humanoid"]["state"]
    assert inputs.floor_material[1] == character["humanoid"]["floor_material"]
    np.testing.assert_array_equal(inputs.bbox_cframe[1], character["bbox"]["cframe"])
    np.testing.assert_array_equal(inputs.bbox_size[1], character["bbox"]["size"])
    np.testing.assert_array_equal(inputs.root_cframe[1], character["root"]["cframe"])
    np.testing.assert_array_equal(inputs.move_direction[1],
                                  character["humanoid"]["move_direction"])
    assert inputs.humanoid_state[2] == "" and np.isnan(inputs.fov_y[2])


def test_frame_times_must_strictly_increase(session_path):
    path = session_path / "aligned.parquet"
    table = pq.read_table(path)
    pq.write_table(table.set_column(1, "t", pa.array([0.0, 0.1, 0.1, 0.2])), path)
    with pytest.raises(PipelineError) as refused:
        frame_inputs(Session.open(session_path))
    assert str(refused.value) == (f"{path}: frame times `t` must strictly increase; "
                                  "re-create it with `stpe align`")


def test_tables_without_frames_or_columns_are_refused_by_path(session_path):
    path = session_path / "aligned.parquet"
    table = pq.read_table(path)
    pq.write_table(table.slice(0, 0), path)
    with pytest.raises(PipelineError) as refused:
        frame_inputs(Session.open(session_path))
    assert str(refused.value) == (f"{path} has no frames: nothing to label; check that the "
                                  "session recorded video and re-run `stpe align`")
    pq.write_table(table.drop_columns(["seq", "camera.fov_y"]), path)
    with pytest.raises(PipelineError) as refused:
        frame_inputs(Session.open(session_path))
    assert str(refused.value) == (
        f"{path} lacks columns ['seq', 'camera.fov_y'] (expected the aligned-table contract); "
        f"re-create it with `stpe align {session_path}`")
