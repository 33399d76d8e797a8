"""The LeRobot export read back by walking its files: constant-rate resampling against a
brute-force oracle, the video's frame times and keyframes, and the label features joined
back to labels.parquet. (tests/pipeline/test_export_interop.py loads it with LeRobot.)"""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction

import av
import numpy as np
import pyarrow.parquet as pq
import pytest

from capture import Session
from pipeline._errors import PipelineError
from pipeline.export import ExportOptions, export_sessions
from pipeline.export._resample import nearest_rows
from pipeline.labels import read_labels
from tests.pipeline.export_kit import jittered, labelled, nearest_oracle

VIDEO = "videos/observation.images.main/chunk-000/file-000.mp4"


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    parent = tmp_path_factory.mktemp("lr-sessions")
    return [labelled(parent, "s1", jittered(40, 0.0013, drop_every=7)),
            labelled(parent, "s2", jittered(30, 0.0021))]


@pytest.fixture(scope="module")
def export(sessions, tmp_path_factory):
    out = tmp_path_factory.mktemp("lr") / "ds"
    export_sessions(sessions, "lerobot", out)
    return out


def _kept_labels(path):
    labels = read_labels(Session.open(path))
    return labels.filter(labels["K"].is_valid())


def test_rows_are_the_nearest_captured_frames_at_the_nominal_rate(export, sessions):
    info = json.loads((export / "meta/info.json").read_text())
    assert info["fps"] == 30  # the capture rate, not the measured mean (~26 with drops)
    data = pq.read_table(export / "data/chunk-000/file-000.parquet")
    episodes = pq.read_table(export / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert data.schema.field("timestamp").type == "double"
    start = 0
    for ep, path in enumerate(sessions):
        labels = _kept_labels(path)
        t = labels["t"].to_numpy()
        nearest = nearest_oracle(t, 30)
        rows = data.slice(start, len(nearest))
        assert episodes[ep]["dataset_from_index"] == start
        assert episodes[ep]["dataset_to_index"] == start + len(nearest)
        assert rows["episode_index"].to_pylist() == [ep] * len(nearest)
        assert rows["frame_index"].to_pylist() == list(range(len(nearest)))
        assert rows["index"].to_pylist() == list(range(start, start + len(nearest)))
        np.testing.assert_array_equal(rows["timestamp"].to_numpy(),
                                      [k / 30 for k in range(len(nearest))])
        frames = labels["frame_index"].to_numpy()
        assert rows["source_frame_index"].to_pylist() == frames[nearest].tolist()
        np.testing.assert_array_equal(rows["capture_t"].to_numpy(), t[nearest])
        start += len(nearest)
    assert start == data.num_rows == info["total_frames"]
    # the dropped grabs of s1 show as repeated source frames
    assert len(set(data["source_frame_index"].to_pylist()[:49])) == 39


def test_each_episode_has_its_constant_rate_video_with_lerobot_keyframes(export):
    data = pq.read_table(export / "data/chunk-000/file-000.parquet")
    episodes = pq.read_table(export / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    videos = sorted((export / VIDEO).parent.glob("*.mp4"))
    assert [v.name for v in videos] == ["file-000.mp4", "file-001.mp4"]
    for ep, episode in enumerate(episodes):
        assert episode["videos/observation.images.main/chunk_index"] == 0
        assert episode["videos/observation.images.main/file_index"] == ep
        assert episode["videos/observation.images.main/from_timestamp"] == 0.0
        with av.open(str(videos[ep])) as container:
            stream = container.streams.video[0]
            assert stream.time_base == Fraction(1, 30)  # frame k at pts k
            packets = [p for p in container.demux(stream) if p.size]
            pts = sorted(float(p.pts * stream.time_base) for p in packets)
            keys = [p.is_keyframe for p in sorted(packets, key=lambda p: p.pts)]
        rows = data.slice(episode["dataset_from_index"], episode["length"])
        assert len(pts) == episode["length"]
        assert episode["videos/observation.images.main/to_timestamp"] == len(pts) / 30
        np.testing.assert_allclose(pts, rows["timestamp"].to_numpy(), atol=1e-9)
        np.testing.assert_allclose(pts, np.arange(len(pts)) / 30, atol=1e-9)
        assert keys == [i % 2 == 0 for i in range(len(keys))]


def test_gop_option_sets_the_keyframe_interval(sessions, tmp_path):
    export_sessions(sessions[:1], "lerobot", tmp_path / "g", ExportOptions(gop=10))
    with av.open(str(tmp_path / "g" / VIDEO)) as container:
        keys = [p.is_keyframe for p in container.demux(container.streams.video[0]) if p.size]
    assert keys == [i % 10 == 0 for i in range(len(keys))]
    with pytest.raises(PipelineError, match="--gop"):
        export_sessions(sessions[:1], "lerobot", tmp_path / "bad", ExportOptions(gop=0))


def test_odd_frame_sizes_are_padded_to_even_in_the_video_and_its_feature(tmp_path):
    # H.264 in yuv420p needs even sizes: 161x91 frames are padded right and bottom to
    # 162x92, and info.json must declare the decoded size, which LeRobot checks frames by
    path = labelled(tmp_path, "odd", jittered(6, 0.0), size=(161, 91))
    export_sessions([path], "lerobot", tmp_path / "ds")
    info = json.loads((tmp_path / "ds/meta/info.json").read_text())
    feature = info["features"]["observation.images.main"]
    assert feature["shape"] == [92, 162, 3]
    assert (feature["info"]["video.height"], feature["info"]["video.width"]) == (92, 162)
    with av.open(str(tmp_path / "ds" / VIDEO)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert {f.shape for f in frames} == {(92, 162, 3)}


def test_each_episode_lists_the_tasks_of_its_own_rows(tmp_path):
    # the character runs, walks and moves in the first session's 100 frames and only runs
    # in the second's 10; each episode lists exactly the tasks its own rows point to, not
    # every task seen so far
    paths = [labelled(tmp_path, "long", jittered(100, 0.0)),
             labelled(tmp_path, "short", jittered(10, 0.0))]
    export_sessions(paths, "lerobot", tmp_path / "ds")
    names = pq.read_table(tmp_path / "ds/meta/tasks.parquet").to_pandas()
    task_of = dict(zip(names["task_index"], names.index, strict=True))
    data = pq.read_table(tmp_path / "ds/data/chunk-000/file-000.parquet")
    episodes = pq.read_table(tmp_path / "ds/meta/episodes/chunk-000/file-000.parquet")
    listed = []
    for ep in episodes.to_pylist():
        rows = data.slice(ep["dataset_from_index"], ep["length"])
        assert ep["tasks"] == sorted({task_of[i] for i in rows["task_index"].to_pylist()})
        listed.append(ep["tasks"])
    assert [len(tasks) for tasks in listed] == [3, 1]


def test_labels_are_features_joined_by_source_frame(export, sessions):
    data = pq.read_table(export / "data/chunk-000/file-000.parquet").slice(0, 49).to_pylist()
    labels = {r["frame_index"]: r for r in _kept_labels(sessions[0]).to_pylist()}
    tasks = pq.read_table(export / "meta/tasks.parquet").to_pandas()
    task_of = {int(i): name for name, i in zip(tasks.index, tasks["task_index"], strict=True)}
    for row in data:
        label = labels[row["source_frame_index"]]
        assert row["observation.K"] == label["K"]
        assert row["observation.T_cam_world"] == label["T_cam_world"]
        assert row["observation.root_px"] == (label["root_px"] or [0.0, 0.0])
        assert row["observation.root_visible"] == (label["root_px"] is not None)
        assert row["caption"] == label["caption"]
        shown = [o for o in label["objects"] if o["on_screen"]]
        assert json.loads(row["observation.box_ids"]) == [o["id"] for o in shown][:8]
        boxes = np.array(row["observation.boxes"], dtype=np.float64).reshape(8, 4)
        for j, o in enumerate(shown[:8]):
            np.testing.assert_allclose(boxes[j], o["box_xyxy"], rtol=1e-6)
        assert row["observation.box_count"] == min(len(shown), 8)
        assert (boxes[len(shown):] == 0).all()
        # the task is the caption's motion without its speed
        motion = re.search(r"the character (\w+ [\w-]+) at", label["caption"]).group(1)
        assert task_of[row["task_index"]] == f"The character {motion}."


def test_hour_long_resampling_matches_the_oracle_on_samples():
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.uniform(0.02, 0.05, 110_000))  # ~1 hour at ~30 fps, irregular
    rows = nearest_rows(t, 30)
    assert len(rows) == int(np.floor((t[-1] - t[0]) * 30 + 1e-9)) + 1
    for k in rng.integers(0, len(rows), 200):
        target = t[0] + k / 30
        assert abs(t[rows[k]] - target) == np.abs(t - target).min()


def test_sessions_at_different_rates_need_one_rate(sessions, tmp_path):
    from capture import SessionWriter

    other = labelled(tmp_path, "s3", jittered(10, 0.0))
    writer = SessionWriter.reopen(other)
    manifest = Session.open(other).manifest
    writer.update_manifest(capture=manifest.capture.model_copy(update={"fps": 60.0}))
    writer.close()
    with pytest.raises(PipelineError, match=re.escape(
            "sessions were captured at different rates [30, 60]; pass --fps-cap N to export "
            "them at one rate")):
        export_sessions([sessions[0], other], "lerobot", tmp_path / "x")
    counts = export_sessions([sessions[0], other], "lerobot", tmp_path / "y",
                             ExportOptions(fps_cap=15))
    assert counts["fps"] == 15
    # a cap or a capture rate under 1.5 fps rounds to 1 fps, not to a faster rate
    assert export_sessions([other], "lerobot", tmp_path / "z",
                           ExportOptions(fps_cap=1.2))["fps"] == 1
    writer = SessionWriter.reopen(other)
    writer.update_manifest(capture=manifest.capture.model_copy(update={"fps": 1.0}))
    writer.close()
    assert export_sessions([other], "lerobot", tmp_path / "w")["fps"] == 1


def test_frames_without_a_character_get_zero_root_and_no_task_motion(sessions):
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.export._lerobot_labels import NO_CHARACTER, label_columns

    labels = _kept_labels(sessions[1])
    gone = np.zeros(labels.num_rows, bool)
    gone[[2, 5]] = True
    mask = pa.array(gone)
    root = labels["root_px"].combine_chunks()
    labels = labels.set_column(labels.schema.get_field_index("root_px"), "root_px",
                               pc.if_else(mask, pa.nulls(len(root), root.type), root))
    speed = labels["speed"].combine_chunks()
    labels = labels.set_column(labels.schema.get_field_index("speed"), "speed",
                               pc.if_else(mask, pa.nulls(len(speed), speed.type), speed))
    rows = np.array([0, 2, 2, 5, 6])
    got = label_columns(labels, rows)
    expected = labels["root_px"].to_pylist()
    assert got["observation.root_visible"].tolist() == [True, False, False, False, True]
    assert got["observation.root_px"][[1, 2, 3]].tolist() == [[0.0, 0.0]] * 3
    assert got["observation.root_px"][4].tolist() == expected[6]
    assert got["observation.K"][1].tolist() == labels["K"][2].as_py()
    assert [got["task"][i] == NO_CHARACTER for i in range(5)] == [False, True, True, True,
                                                                   False]


def test_a_root_pixel_with_a_nan_is_not_visible_and_a_missing_caption_is_empty(sessions):
    import pyarrow as pa

    from pipeline.export._lerobot_labels import label_columns

    labels = _kept_labels(sessions[1])
    root = labels["root_px"].to_pylist()
    root[3] = [float("nan"), 40.0]  # a list that is present but not a pixel
    captions = labels["caption"].to_pylist()
    captions[4] = None
    labels = labels.set_column(labels.schema.get_field_index("root_px"), "root_px",
                               pa.array(root, labels.schema.field("root_px").type))
    labels = labels.set_column(labels.schema.get_field_index("caption"), "caption",
                               pa.array(captions, pa.string()))
    got = label_columns(labels, np.array([3, 4]))
    assert got["observation.root_visible"].tolist() == [False, True]
    assert got["observation.root_px"][0].tolist() == [0.0, 0.0]
    assert got["observation.root_px"][1].tolist() == root[4]
    assert got["caption"].to_pylist() == [captions[3], ""]


def test_info_declares_every_data_column_with_its_type_shape_and_names(export):
    import pyarrow as pa

    # LeRobot reads the data files through the features of info.json: every column must be
    # declared, and the label features as docs/exports.md lists them
    info = json.loads((export / "meta/info.json").read_text())
    data = pq.read_schema(export / "data/chunk-000/file-000.parquet")
    features = info["features"]
    assert set(features) == {*data.names, "observation.images.main"}
    arrow_dtype = {pa.float32(): "float32", pa.float64(): "float64", pa.int64(): "int64",
                   pa.bool_(): "bool", pa.string(): "string"}
    for name in data.names:  # the values stored are of the declared type
        stored = data.field(name).type
        while pa.types.is_list(stored) or pa.types.is_fixed_size_list(stored):
            stored = stored.value_type
        assert arrow_dtype[stored] == features[name]["dtype"], name
    declared = {name: (f["dtype"], f["shape"], f["names"]) for name, f in features.items()}
    assert declared["observation.root_px"] == ("float64", [2], ["u", "v"])
    assert declared["observation.root_visible"] == ("bool", [1], None)
    assert declared["observation.K"] == ("float64", [9], None)
    assert declared["observation.T_cam_world"] == ("float64", [16], None)
    assert declared["observation.box_count"] == ("int64", [1], None)
    assert declared["observation.box_ids"] == ("string", [1], None)
    assert declared["caption"] == ("string", [1], None)
    dtype, shape, names = declared["observation.boxes"]
    assert (dtype, shape, len(names)) == ("float32", [32], 32)
    assert names[:5] == ["box0.x0", "box0.y0", "box0.x1", "box0.y1", "box1.x0"]
    assert names[-1] == "box7.y1"


def test_stats_describe_the_rows_as_written(export):
    data = pq.read_table(export / "data/chunk-000/file-000.parquet")
    stats = json.loads((export / "meta/stats.json").read_text())
    for name in ("observation.state", "observation.K", "observation.boxes", "timestamp",
                 "source_frame_index"):
        column = data[name].to_pylist()
        values = np.array([v if isinstance(v, list) else [v] for v in column], np.float64)
        np.testing.assert_allclose(stats[name]["mean"], values.mean(0), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(stats[name]["max"], values.max(0))
        assert stats[name]["count"] == [data.num_rows]
    assert "caption" not in stats and "observation.box_ids" not in stats
    # the images' statistics, per channel in [0, 1] over every 8th pixel and row of every
    # frame written, against the decoded videos (H.264 moves each mean by under 0.02)
    frames = []
    for video in sorted((export / VIDEO).parent.glob("*.mp4")):
        with av.open(str(video)) as container:
            frames += [f.to_ndarray(format="rgb24")[::8, ::8] for f in container.decode(video=0)]
    pixels = np.concatenate([f.reshape(-1, 3) for f in frames]) / 255.0
    image = stats["observation.images.main"]
    assert image["count"] == [len(frames)] == [data.num_rows]
    np.testing.assert_allclose(np.ravel(image["mean"]), pixels.mean(0), atol=0.02)
    np.testing.assert_allclose(np.ravel(image["std"]), pixels.std(0), atol=0.02)


def test_boxes_are_the_first_eight_on_screen_entities_of_each_row(sessions):
    import pyarrow as pa

    from pipeline.export._lerobot_labels import label_columns

    labels = _kept_labels(sessions[1]).slice(0, 6)
    kind = labels.schema.field("objects").type

    def entity(i, on_screen, box=(1.0, 2.0, 3.0, 4.0)):
        return {"id": f"e{i}", "on_screen": on_screen,
                "box_xyxy": None if box is None else [b + i for b in box]}

    objects = [
        None,  # no objects at all
        [],
        [entity(i, i % 3 != 0) for i in range(16)],  # 10 of 16 on screen, 8 kept
        [entity(0, None), entity(1, True, (np.nan,) * 4), entity(2, False)],
        [entity(5, True), None, entity(6, True, None)],  # a null entry, a null box
        [entity(7, False)],
    ]
    column = pa.array(objects, kind)
    labels = labels.set_column(labels.schema.get_field_index("objects"), "objects", column)
    rows = np.array([0, 1, 2, 2, 3, 4, 5])
    got = label_columns(labels, rows)
    for out, row in enumerate(rows):  # the oracle: the rule as docs/exports.md states it
        shown = [o for o in objects[row] or [] if o is not None and o["on_screen"]
                 and o["box_xyxy"] is not None and all(map(math.isfinite, o["box_xyxy"]))][:8]
        assert got["observation.box_count"][out] == len(shown)
        assert json.loads(got["observation.box_ids"][out]) == [o["id"] for o in shown]
        boxes = got["observation.boxes"][out].reshape(8, 4)
        expected = np.zeros((8, 4))
        for j, o in enumerate(shown):
            expected[j] = o["box_xyxy"]
        np.testing.assert_array_equal(boxes, expected.astype(np.float32))
    assert got["observation.box_count"].tolist() == [0, 0, 8, 8, 0, 1, 0]
    assert np.isfinite(got["observation.boxes"]).all()


def test_resampling_by_hand():
    # frames at 0, 0.25 and 0.5 s resampled at 8 fps: output times 0, 0.125, .., 0.5; the
    # ties at 0.125 and 0.375 go to the earlier frame
    assert nearest_rows(np.array([0.0, 0.25, 0.5]), 8).tolist() == [0, 0, 1, 1, 2]
    # one frame: one output frame, an integer row index like any other (rows index arrays)
    one = nearest_rows(np.array([3.0]), 30)
    assert one.tolist() == [0] and one.dtype == np.int64
    # (0.3 - 0.1) * 10 is 1.9999999999999998 in floating point: still 3 output frames
    assert nearest_rows(np.array([0.1, 0.2, 0.3]), 10).tolist() == [0, 1, 2]
    # each output time takes the nearest frame, before or after it
    assert nearest_rows(np.array([0.0, 0.3, 0.35, 1.0]), 4).tolist() == [0, 1, 2, 3, 3]


@pytest.mark.parametrize(("row", "text"), [
    ({"move_dir_cam": "forward", "speed": 7.99, "grounded": True},
     "The character walks forward."),
    ({"move_dir_cam": "back-left", "speed": 8.0, "grounded": True},
     "The character runs back-left."),
    ({"move_dir_cam": "right", "speed": 20.0, "grounded": False}, "The character moves right."),
    ({"move_dir_cam": "none", "speed": 0.0, "grounded": True}, "The character stands still."),
    ({"move_dir_cam": None, "speed": 0.0, "grounded": False}, "The character is in the air."),
    ({"move_dir_cam": "forward", "speed": float("nan"), "grounded": True}, None),
    ({"move_dir_cam": None, "speed": None, "grounded": None}, None),
])
def test_state_caption_by_hand(row, text):
    from pipeline.export._lerobot_labels import NO_CHARACTER, state_caption

    assert state_caption(row) == (NO_CHARACTER if text is None else text)
