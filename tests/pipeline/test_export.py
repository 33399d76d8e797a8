"""Every export format, loaded back by its own ecosystem's reader."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from capture import Session
from capture._synthetic import synthetic_sample
from pipeline._errors import PipelineError
from pipeline.cli import cli
from pipeline.export import ACTION_NAMES, STATE_NAMES, ExportOptions, export_sessions
from pipeline.export._lerobot_meta import Info, Stats
from pipeline.labels import compute_labels, read_labels, write_labels
from tests.pipeline.export_kit import labelled, nan_to_null
from tests.pipeline.session_kit import make_session

SIZE = (320, 180)
N = 45
# the `webdataset` reader leaves its shard files for the garbage collector to close
WDS_LEAK = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
            pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


def _labelled(parent, name, jitter):
    samples = [synthetic_sample(i, i / 60) for i in range(2 * N)]
    frame_t = [i / 30 + jitter * (i % 4) for i in range(N)]
    frames = [2 * i for i in range(N - 1)] + [None]  # the last frame has no state
    path = make_session(parent, samples, frames, frame_t, size=SIZE, scale=(0.25, 0.25),
                        video=True, name=name)
    session = Session.open(path)
    write_labels(session, compute_labels(session))
    return path


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    parent = tmp_path_factory.mktemp("sessions")
    return [_labelled(parent, "s1", 0.0013), _labelled(parent, "s2", 0.0021)]


@pytest.fixture(scope="module")
def lerobot(sessions, tmp_path_factory):
    out = tmp_path_factory.mktemp("lr") / "ds"
    export_sessions(sessions, "lerobot", out)
    return out


def test_lerobot_meta_follows_v3(lerobot):
    info = Info.model_validate_json((lerobot / "meta/info.json").read_text())
    assert info.codebase_version == "v3.0" and info.total_episodes == 2
    assert info.total_frames == 2 * (N - 1) and info.fps == 30
    assert info.features["observation.state"].names == list(STATE_NAMES)
    assert info.features["action"].shape == [len(ACTION_NAMES)]
    assert info.features["observation.images.main"].shape == [SIZE[1], SIZE[0], 3]
    stats = json.loads((lerobot / "meta/stats.json").read_text())
    for name in ("observation.state", "action", "timestamp", "observation.images.main"):
        Stats.model_validate(stats[name])
    assert np.shape(stats["observation.images.main"]["mean"]) == (3, 1, 1)
    tasks = pq.read_table(lerobot / "meta/tasks.parquet").to_pandas()
    assert sorted(tasks["task_index"]) == list(range(info.total_tasks))
    (lerobot / "README.md").read_text().index("frames: 88")


@WDS_LEAK[0]
@WDS_LEAK[1]
def test_webdataset_loads_with_webdataset(sessions, tmp_path):
    import webdataset as wds

    out = tmp_path / "wds"
    counts = export_sessions(sessions, "webdataset", out, ExportOptions(shard_mb=0.5))
    shards = sorted(str(p) for p in out.glob("train-*.tar"))
    assert counts["shards"] == len(shards) > 1
    assert all((out / p).stat().st_size <= 0.5 * 1024 * 1024 for p in shards)
    samples = list(wds.WebDataset(shards, shardshuffle=False).decode("rgb"))
    assert len(samples) == 2 * (N - 1)
    first = samples[0]
    assert first["jpg"].shape == (SIZE[1], SIZE[0], 3)
    assert first["json"]["frame_index"] == 0 and first["json"]["session"] == "s1"
    assert first["json"]["labels"]["K"][0] == pytest.approx(first["json"]["labels"]["K"][4])
    assert first["vector.npy"].shape == (len(STATE_NAMES) + len(ACTION_NAMES),)
    for sample in samples:  # the vector is the record's state then its action, as float32
        state, action = sample["json"]["state"], sample["json"]["action"]
        assert (list(state), list(action)) == (list(STATE_NAMES), list(ACTION_NAMES))
        expected = np.array([*state.values(), *action.values()], np.float32)
        np.testing.assert_array_equal(sample["vector.npy"], expected)
    assert first["json"]["caption"].startswith("Holding W")


def test_webdataset_keys_name_the_source_frame_when_frames_are_thinned(sessions, tmp_path):
    # at 10 fps of a 30 fps session about every third frame is kept, so a sample's place
    # in the export is not its frame: the 2nd sample is frame 3, named s1_000003.*
    export_sessions(sessions[:1], "webdataset", tmp_path / "wds", ExportOptions(fps_cap=10))
    members = {}
    for shard in sorted((tmp_path / "wds").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                stem, ext = member.name.split(".", 1)
                members.setdefault(stem, {})[ext] = tar.extractfile(member).read()
    frames = []
    for stem, files in members.items():
        assert sorted(files) == ["jpg", "json", "vector.npy"]
        frame = json.loads(files["json"])["frame_index"]
        assert stem == f"s1_{frame:06d}"
        frames.append(frame)
    assert sorted(frames)[:2] == [0, 3] and len(frames) < (N - 1) / 2


def test_coco_area_is_the_box_width_times_height(sessions, tmp_path):
    export_sessions(sessions[:1], "coco", tmp_path / "coco")
    coco = json.loads((tmp_path / "coco/annotations_train.json").read_text())
    boxes = [(a["bbox"], a["area"]) for a in coco["annotations"]]
    assert boxes and all(w != h for (_, _, w, h), _ in boxes)  # not square: w * w differs
    for (_, _, w, h), area in boxes:
        assert area == pytest.approx(w * h, rel=1e-12)


def _not_json(constant):
    raise AssertionError(f"{constant} is not JSON")


def test_webdataset_records_are_strict_json_with_nan_as_null(sessions, tmp_path):
    export_sessions(sessions[:1], "webdataset", tmp_path / "wds")
    records = {}
    for shard in (tmp_path / "wds").glob("*.tar"):
        with tarfile.open(shard) as tar:
            for member in tar:
                # reproducible archives: no time, owner or exec bit from the machine
                assert (member.mtime, member.mode, member.uname, member.gname) == (
                    0, 0o644, "", "")
                if member.name.endswith(".json"):
                    record = json.loads(tar.extractfile(member).read(),
                                        parse_constant=_not_json)
                    records[record["frame_index"]] = record
    labels = read_labels(Session.open(sessions[0])).to_pylist()
    with_nan = [row for row in labels if row["frame_index"] in records
                and nan_to_null(row["objects"]) != row["objects"]]
    assert with_nan  # the session has NaN values for the records to carry
    for row in with_nan:
        assert records[row["frame_index"]]["labels"]["objects"] == nan_to_null(row["objects"])


def test_parquet_loads_with_datasets(sessions, tmp_path):
    import datasets

    out = tmp_path / "pq"
    export_sessions(sessions[:1], "parquet", out)
    ds = datasets.load_dataset("parquet", data_files=str(out / "data/*.parquet"),
                               split="train", cache_dir=str(tmp_path / "cache"))
    assert len(ds) == N - 1
    row = ds[3]
    assert row["image"].size == SIZE and row["image"].mode == "RGB"
    assert row["frame_index"] == 3 and len(row["observation.state"]) == len(STATE_NAMES)
    assert json.loads(row["labels"])["method"] == "timecode"
    # each image names its source frame: <session>/<frame_index:06d>.jpg
    table = pq.read_table(out / "data")
    paths = table["image"].combine_chunks().field("path").to_pylist()
    assert paths == [f"s1/{i:06d}.jpg" for i in table["frame_index"].to_pylist()]


def test_parquet_files_split_at_the_shard_size(sessions, tmp_path):
    out = tmp_path / "pq"
    counts = export_sessions(sessions, "parquet", out, ExportOptions(shard_mb=0.2))
    files = sorted(out.glob("data/train-*.parquet"))
    assert counts["files"] == len(files) > 2
    images = [sum(len(r["bytes"]) for r in pq.read_table(f)["image"].to_pylist())
              for f in files]
    assert max(images) <= 0.2 * 1024 * 1024
    frames = [pq.read_table(f, columns=["session", "frame_index"]).to_pylist() for f in files]
    flat = [(r["session"], r["frame_index"]) for rows in frames for r in rows]
    assert flat == [(f"s{i}", k) for i in (1, 2) for k in range(N - 1)]


def test_coco_boxes_and_tracks_match_the_labels(sessions, tmp_path):
    out = tmp_path / "coco"
    export_sessions(sessions[:1], "coco", out)
    text = (out / "annotations_train.json").read_text()
    coco = json.loads(text)
    assert text == json.dumps(coco, sort_keys=True)  # one canonical form: diffs stay small
    assert coco["info"] == {"description": "STPE ground-truth boxes (train)", "version": "1.0"}
    assert len(coco["images"]) == N - 1
    labels = read_labels(Session.open(sessions[0]))["objects"].to_pylist()
    visible = [o for frame in labels[: N - 1] for o in frame if o["on_screen"]]
    assert len(coco["annotations"]) == len(visible) > 0
    assert {(i["width"], i["height"]) for i in coco["images"]} == {SIZE}
    for ann, obj in zip(coco["annotations"], visible, strict=True):
        x0, y0, x1, y1 = obj["box_xyxy"]
        assert ann["bbox"] == pytest.approx([x0, y0, x1 - x0, y1 - y0])
        assert (ann["object_id"], ann["truncation"]) == (obj["id"], obj["truncation"])
        assert ann["distance"] == obj["distance"]  # from the camera, not the depth
    assert any(o["distance"] != pytest.approx(o["depth"]) for o in visible)
    # categories: the character is 1, then each entity name in order of first sight
    names = ["character"]
    for o in visible:
        name = "character" if o["kind"] == "character" else o["name"]
        names += [name] if name not in names else []
    assert len(names) > 1
    assert coco["categories"] == [{"id": i, "name": n, "supercategory": "object"}
                                  for i, n in enumerate(names, 1)]
    tracks = {a["object_id"]: a["track_id"] for a in coco["annotations"]}
    assert len(set(tracks.values())) == len(tracks)
    assert (out / coco["images"][0]["file_name"]).stat().st_size > 0


def test_coco_tracks_are_per_session(sessions, tmp_path):
    # both sessions hold the same object ids; a track follows one object in one session
    export_sessions(sessions, "coco", tmp_path / "coco")
    coco = json.loads((tmp_path / "coco/annotations_train.json").read_text())
    session_of = {i["id"]: i["session"] for i in coco["images"]}
    tracks = {(session_of[a["image_id"]], a["object_id"]): a["track_id"]
              for a in coco["annotations"]}
    assert {s for s, _ in tracks} == {"s1", "s2"}
    assert len(set(tracks.values())) == len(tracks)


@pytest.mark.parametrize("fmt", ["webdataset", "parquet", "coco", "lerobot"])
def test_exports_are_deterministic(sessions, tmp_path, fmt):
    a, b = tmp_path / "a", tmp_path / "b"
    calls = []
    counts = export_sessions(sessions[:1], fmt, a, ExportOptions(fps_cap=10),
                             progress=lambda done, total: calls.append((done, total)))
    export_sessions(sessions[:1], fmt, b, ExportOptions(fps_cap=10))
    frames = {"coco": "images", "lerobot": "source_frames", "parquet": "rows",
              "webdataset": "samples"}
    assert calls == [(0, counts[frames[fmt]]), (counts[frames[fmt]], counts[frames[fmt]])]
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        if f.suffix != ".mp4":  # video bytes aside
            assert (a / f).read_bytes() == (b / f).read_bytes(), f


@WDS_LEAK[0]
@WDS_LEAK[1]
def test_timecode_mask_and_crop(sessions, tmp_path):
    import webdataset as wds

    for mode in ("mask", "crop"):
        export_sessions(sessions[:1], "webdataset", tmp_path / mode,
                        ExportOptions(timecode=mode, fps_cap=10))
    masked = next(iter(wds.WebDataset(str(tmp_path / "mask/train-000000.tar"),
                                      shardshuffle=False).decode("rgb8")))["jpg"]
    # strip: 320 x 24 viewport px at the bottom-left, times the 0.25 capture scale
    assert masked[-6:, :80].max() <= 8 and masked[-20:-8, 100:].mean() > 20
    cropped = next(iter(wds.WebDataset(str(tmp_path / "crop/train-000000.tar"),
                                       shardshuffle=False).decode("rgb8")))["jpg"]
    assert cropped.shape == (SIZE[1] - 6, SIZE[0], 3)


def test_fps_cap_thins_by_real_time(sessions, tmp_path):
    counts = export_sessions(sessions[:1], "parquet", tmp_path / "pq", ExportOptions(fps_cap=10))
    data = pq.read_table(tmp_path / "pq/data/train-00000.parquet")
    assert counts["rows"] == data.num_rows and np.diff(data["t"].to_numpy()).min() >= 0.1 - 1e-6


def _refuse(args, fragment, tmp_path):
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(cli, ["export", *args])
    assert result.exit_code != 0
    text = " ".join((result.output + str(result.exception)).split())
    assert fragment in text, text
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_bad_requests_write_nothing(sessions, tmp_path):
    out = str(tmp_path / "out")
    _refuse([str(sessions[0]), "--format", "tfrecord", "--out", out], "tfrecord", tmp_path)
    _refuse([str(sessions[0]), "--format", "coco", "--out", out, "--fps-cap", "0"],
            "fps-cap", tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    _refuse([str(sessions[0]), "--format", "coco", "--out", str(tmp_path / "full")],
            "already exists", tmp_path)
    assert (tmp_path / "full" / "x").read_text() == "keep me"


def test_unlabelled_empty_or_corrupt_sessions_are_refused(tmp_path):
    samples = [synthetic_sample(i, i / 60) for i in range(4)]
    path = make_session(tmp_path / "in", samples, [0, 2], [0.0, 1 / 30], size=SIZE)
    out = tmp_path / "out"
    with pytest.raises(PipelineError, match="run `stpe labels"):
        export_sessions([path], "coco", out)
    (path / "labels.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(PipelineError, match="not a readable parquet"):
        export_sessions([path], "coco", out)
    session = Session.open(path)
    write_labels(session, compute_labels(session))
    with pytest.raises(PipelineError, match="no video"):
        export_sessions([path], "coco", out)
    empty = make_session(tmp_path / "in", samples, [None, None], [0.0, 1 / 30], size=SIZE,
                         name="empty")
    write_labels(Session.open(empty), compute_labels(Session.open(empty)))
    with pytest.raises(PipelineError, match="no frames with state"):
        export_sessions([empty], "webdataset", out)
    assert not out.exists() and not list(tmp_path.glob(".out.tmp*"))


def test_export_command(sessions, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(cli, ["export", str(sessions[0]), "--format", "coco",
                                      "--out", str(out), "--fps-cap", "15"])
    assert result.exit_code == 0, result.output
    assert "coco" in result.output and (out / "README.md").is_file()


def test_coco_carries_the_segment_stage_masks_of_true_entities(tmp_path):
    from capture import SessionWriter
    from pipeline.annotate._rle import rle_decode, rle_encode

    path = _labelled(tmp_path, "masked", 0.0)
    first = read_labels(Session.open(path))["objects"][0].as_py()
    target = next(o for o in first if o["on_screen"])
    mask = np.zeros((SIZE[1], SIZE[0]), bool)
    x0, y0, x1, y1 = (int(v) for v in target["box_xyxy"])
    mask[y0:y1, x0:x1] = True
    rle = rle_encode(mask)
    row = {"frame_index": 0, "prompt": target["name"], "entity_id": target["id"],
           "mask_size": rle["size"], "mask_counts": rle["counts"]}
    worse = rle_encode(~mask)["counts"]
    rows = [{**row, "score": 0.9}, {**row, "score": 0.2, "mask_counts": worse},
            {**row, "score": 0.99, "entity_id": None}]
    writer = SessionWriter.reopen(path)
    writer.write_output("annotations/segment/shard-00000.parquet", _parquet(rows))
    writer.close()

    counts = export_sessions([path], "coco", tmp_path / "coco")
    coco = json.loads((tmp_path / "coco" / "annotations_train.json").read_text())
    masked = [a for a in coco["annotations"] if "segmentation" in a]
    assert counts["masks"] == len(masked)
    assert [(a["image_id"], a["object_id"]) for a in masked] == [(1, target["id"])]
    np.testing.assert_array_equal(rle_decode(masked[0]["segmentation"]), mask)


def _parquet(rows):
    import io

    import pyarrow as pa

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def test_progress_reports_every_64th_frame_and_the_last():
    from pipeline.export._registry import _counter

    calls, read = [], []
    count = _counter(lambda done, total: calls.append((len(read), done, total)), 130)
    for frame in range(130):
        read.append(frame)
        count()
    # (frames read when reported, frames reported, total)
    assert calls == [(0, 0, 130), (64, 64, 130), (128, 128, 130), (130, 130, 130)]


def test_each_format_name_is_registered_to_its_exporter():
    from pipeline.export._coco import export_coco
    from pipeline.export._lerobot import export_lerobot
    from pipeline.export._parquet import export_parquet
    from pipeline.export._registry import EXPORTERS
    from pipeline.export._webdataset import export_webdataset

    assert dict(EXPORTERS) == {"coco": export_coco, "lerobot": export_lerobot,
                               "parquet": export_parquet, "webdataset": export_webdataset}


@WDS_LEAK[0]
@WDS_LEAK[1]
def test_a_session_id_with_dots_gives_one_sample_per_frame(tmp_path):
    # webdataset takes a sample's key up to the first dot of a member's name, so the dots of
    # the session id "run.2" become dashes: three samples (the fourth frame has no state),
    # each with its image and record
    import webdataset as wds

    path = labelled(tmp_path, "run.2", [i / 30 for i in range(4)])
    export_sessions([path], "webdataset", tmp_path / "wds")
    shards = sorted(str(p) for p in (tmp_path / "wds").glob("*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False))
    assert [(s["__key__"], sorted(k for k in s if not k.startswith("__"))) for s in samples] == [
        (f"run-2_{i:06d}", ["jpg", "json", "vector.npy"]) for i in range(3)]


def test_jpeg_keeps_each_colour_in_place_and_refuses_an_image_it_cannot_encode():
    import io

    from PIL import Image

    from pipeline.export._records import jpeg

    # RGB stripes, 16 px wide (whole JPEG blocks): red, green, blue; Pillow decodes to RGB,
    # so a red-blue swap would show as blue first. Colour bleeds at the stripes' edges (the
    # chroma is subsampled), so only their middles are compared
    image = np.zeros((16, 48, 3), np.uint8)
    for stripe in range(3):
        image[:, 16 * stripe:16 * (stripe + 1), stripe] = 255
    decoded = np.asarray(Image.open(io.BytesIO(jpeg(image))).convert("RGB")).astype(int)
    middles = np.r_[4:12, 20:28, 36:44]
    assert np.abs(decoded[:, middles] - image[:, middles]).max() <= 8
    # JPEG's largest side is 65500 px
    with pytest.raises(ValueError, match=r"^JPEG encoding failed$"):
        jpeg(np.zeros((1, 65501, 3), np.uint8))


def test_webdataset_shards_are_cut_where_the_next_sample_would_pass_the_limit(tmp_path):
    from pipeline.export._webdataset import ShardWriter

    # in a tar archive a member takes a 512-byte header and its data in 512-byte blocks,
    # and the archive ends with 1024 zero bytes: a 1025-byte member takes 512 + 3 * 512 =
    # 2048 bytes, so 1024 + 3 * 2048 = 7168 bytes hold exactly three such samples
    writer = ShardWriter(tmp_path, 7168)
    for i in range(7):
        writer.write([(f"s_{i:06d}.bin", bytes([i]) * 1025)])
    writer.close()
    per_shard = []
    for shard in writer.shards:
        with tarfile.open(shard) as tar:
            per_shard.append([m.name for m in tar])
    assert [len(names) for names in per_shard] == [3, 3, 1]
    assert per_shard[1] == ["s_000003.bin", "s_000004.bin", "s_000005.bin"]
