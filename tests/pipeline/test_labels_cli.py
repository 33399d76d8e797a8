"""`stpe labels` end to end, and its refusals of bad input (nothing written)."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from capture import Session
from capture._synthetic import synthetic_sample
from pipeline._errors import PipelineError
from pipeline.cli import cli
from pipeline.labels import labels_summary, read_labels
from tests.pipeline.session_kit import make_session

CONTRACT_COLUMNS = [
    "frame_index", "t", "seq", "residual_ms", "method", "K", "T_cam_world", "cam_position",
    "cam_quat_xyzw", "root_px", "root_px_engine", "root_px_error", "root_depth",
    "root_distance", "objects", "cam_velocity", "cam_angular_velocity", "humanoid_state",
    "grounded", "speed", "move_dir_cam", "keys", "caption"]


@pytest.fixture
def session_path(tmp_path):
    samples = [synthetic_sample(i, i / 60) for i in range(80)]
    frames = [2 * i for i in range(38)] + [None, None]  # the last two frames unmatched
    return make_session(tmp_path, samples, frames, [i / 30 for i in range(40)])


def test_labels_command_writes_the_contract(session_path):
    result = CliRunner().invoke(cli, ["labels", str(session_path)])
    assert result.exit_code == 0, result.output
    assert "40 frames (38 with state)" in " ".join(result.output.split())
    table = read_labels(Session.open(session_path))
    assert table.column_names == CONTRACT_COLUMNS
    assert table.schema.field("K").type == pa.list_(pa.float64(), 9)
    assert table.schema.field("T_cam_world").type == pa.list_(pa.float64(), 16)
    obj = table.schema.field("objects").type.value_type
    assert [f.name for f in obj] == ["id", "name", "kind", "box_xyxy", "truncation", "on_screen",
                                     "behind_camera", "distance", "depth", "image_motion",
                                     "camera_caused_motion", "object_caused_motion"]
    rows = table.to_pylist()
    assert rows[39]["K"] is None and rows[39]["method"] == "none" and rows[39]["caption"] == ""
    assert rows[39]["objects"] == [] and rows[0]["seq"] == 0
    assert labels_summary(table)["frames_with_state"] == 38
    assert (session_path / "label_events.jsonl").read_bytes().count(b"\n") >= 1
    first = (session_path / "labels.parquet").read_bytes()
    assert CliRunner().invoke(cli, ["labels", str(session_path)]).exit_code == 0
    assert (session_path / "labels.parquet").read_bytes() == first  # deterministic


def _assert_refused(path, fragment):
    before = sorted(p.name for p in path.iterdir())
    result = CliRunner().invoke(cli, ["labels", str(path)])
    assert result.exit_code != 0
    assert isinstance(result.exception, PipelineError), result.output
    assert fragment in str(result.exception)
    assert sorted(p.name for p in path.iterdir()) == before


def test_missing_aligned_names_stpe_align(session_path):
    (session_path / "aligned.parquet").unlink()
    _assert_refused(session_path, "run `stpe align")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty_file"])
def test_corrupt_aligned_is_refused(session_path, damage):
    target = session_path / "aligned.parquet"
    data = target.read_bytes()
    target.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00PAR1" * 1000,
                        "empty_file": b""}[damage])
    _assert_refused(session_path, "not a readable parquet file")


def test_empty_and_contract_breaking_tables_are_refused(session_path):
    table = pq.read_table(session_path / "aligned.parquet")
    pq.write_table(table.slice(0, 0), session_path / "aligned.parquet")
    _assert_refused(session_path, "has no frames")
    pq.write_table(table.drop_columns(["camera.fov_y"]), session_path / "aligned.parquet")
    _assert_refused(session_path, "camera.fov_y")
    reversed_t = table.set_column(1, "t", pa.array(table["t"].to_pylist()[::-1]))
    pq.write_table(reversed_t, session_path / "aligned.parquet")
    _assert_refused(session_path, "strictly increase")
    bad = pa.array([[1.0, 2.0, 3.0]] * table.num_rows, pa.list_(pa.float64()))
    pq.write_table(table.set_column(table.column_names.index("camera.viewport"),
                                    "camera.viewport", bad), session_path / "aligned.parquet")
    _assert_refused(session_path, "must hold 2 numbers")


def test_not_a_session_exits_with_a_clear_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pipeline", "labels", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "is not a session" in " ".join(result.stderr.split())


def test_public_names_exist_once():
    import pipeline.export
    import pipeline.labels

    for module in (pipeline.labels, pipeline.export):  # ruff (RUF022) checks their order
        assert len(set(module.__all__)) == len(module.__all__)
        assert all(hasattr(module, name) for name in module.__all__)
