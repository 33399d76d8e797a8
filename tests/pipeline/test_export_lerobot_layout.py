"""The LeRobot v3.0 files walked with PyAV and pyarrow against the layout LeRobot writes
(huggingface/lerobot, `lerobot/datasets/utils.py` and `video_utils.py`): the video feature
of info.json as LeRobot's `get_video_info` probes the file, the named state and action
dimensions, the tasks file indexed by the task, and snappy-compressed parquet files."""

from __future__ import annotations

import json

import av
import pyarrow.parquet as pq
import pytest

from pipeline.export import export_sessions
from tests.pipeline.export_kit import jittered, labelled

VIDEO = "videos/observation.images.main/chunk-000/file-000.mp4"
PARQUET = ("data/chunk-000/file-000.parquet", "meta/episodes/chunk-000/file-000.parquet",
           "meta/tasks.parquet")


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    parent = tmp_path_factory.mktemp("lr-layout")
    out = parent / "ds"
    export_sessions([labelled(parent, "s", jittered(12, 0.0))], "lerobot", out)
    return out


def test_video_feature_is_what_lerobot_probes_from_the_file(export):
    # LeRobot's get_video_info (video_utils.py) reads these keys from the first video
    # stream with PyAV, and has_audio from its audio streams; the 320x180 frames of
    # export_kit at the 30 fps capture rate, H.264 in yuv420p, three channels
    feature = json.loads((export / "meta/info.json").read_text())["features"][
        "observation.images.main"]
    with av.open(str(export / VIDEO)) as container:
        stream = container.streams.video[0]
        probed = {"video.height": stream.height, "video.width": stream.width,
                  "video.codec": stream.codec.canonical_name,
                  "video.pix_fmt": stream.pix_fmt, "video.is_depth_map": False,
                  "video.fps": int(stream.base_rate), "video.channels": 3,
                  "has_audio": len(container.streams.audio) > 0}
    assert probed == {"video.height": 180, "video.width": 320, "video.codec": "h264",
                      "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                      "video.fps": 30, "video.channels": 3, "has_audio": False}
    assert feature == {"dtype": "video", "shape": [180, 320, 3],
                       "names": ["height", "width", "channels"], "info": probed}


def test_state_and_action_dimensions_are_named_as_docs_list_them(export):
    features = json.loads((export / "meta/info.json").read_text())["features"]
    keys = ["W", "A", "S", "D", "Space", "LeftShift", "LeftControl", "E", "Q", "R", "F",
            "Up", "Down", "Left", "Right"]
    assert features["action"]["names"] == [
        *(f"key.{k}" for k in keys), "mouse.button1", "mouse.button2", "mouse.dx",
        "mouse.dy", "gamepad.lx", "gamepad.ly", "gamepad.rx", "gamepad.ry", "gamepad.lt",
        "gamepad.rt"]
    assert features["observation.state"]["names"] == [
        "root.x", "root.y", "root.z", "root.vx", "root.vy", "root.vz", "root.look.x",
        "root.look.z", "camera.x", "camera.y", "camera.z", "camera.qx", "camera.qy",
        "camera.qz", "camera.qw", "camera.fov_y", "grounded", "speed"]


def test_tasks_file_holds_each_task_as_its_index_named_task(export):
    # LeRobot writes meta/tasks.parquet from a DataFrame of task_index whose index is the
    # task, named "task" (write_tasks / load_tasks in utils.py): walked with pyarrow, that
    # is a "task" column recorded as the pandas index
    table = pq.read_table(export / "meta/tasks.parquet")
    assert table.column_names == ["task_index", "task"]
    assert json.loads(table.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    rows = table.to_pylist()
    assert sorted(r["task_index"] for r in rows) == list(range(len(rows)))
    assert all(r["task"].startswith("The character ") for r in rows)
    data = pq.read_table(export / PARQUET[0], columns=["task_index"])
    assert set(data["task_index"].to_pylist()) == set(range(len(rows)))


def test_parquet_files_are_snappy_compressed_as_lerobot_writes_them(export):
    # pandas and datasets, which LeRobot writes its parquet files with, default to snappy
    for name in PARQUET:
        meta = pq.read_metadata(export / name)
        codecs = {meta.row_group(g).column(c).compression
                  for g in range(meta.num_row_groups) for c in range(meta.num_columns)}
        assert codecs == {"SNAPPY"}, name


def test_a_downsampled_export_read_in_small_batches_has_no_empty_row_group(tmp_path,
                                                                           monkeypatch):
    from pipeline.export import ExportOptions, _source

    # 30 frames kept, frame i at ~i / 30 s (the 31st has no state), exported at 5 fps:
    # rows k = 0..4 at k / 5 s show frames 6k, the ones captured at those times. With
    # labels read 3 rows at a time, the batches [3, 6), [9, 12), .. hold no shown row: each
    # other batch adds one row group of one row, and the empty ones add none
    monkeypatch.setattr(_source, "LABEL_BATCH", 3)
    times = jittered(31, 0.0)
    export_sessions([labelled(tmp_path, "s", times)], "lerobot", tmp_path / "ds",
                    ExportOptions(fps_cap=5))
    meta = pq.read_metadata(tmp_path / "ds" / PARQUET[0])
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [1] * 5
    data = pq.read_table(tmp_path / "ds" / PARQUET[0]).to_pydict()
    assert data["source_frame_index"] == [0, 6, 12, 18, 24]
    assert data["frame_index"] == data["index"] == [0, 1, 2, 3, 4]
    assert data["timestamp"] == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert data["capture_t"] == [times[i] for i in (0, 6, 12, 18, 24)]
