"""`--out s3://...`: exports written to a real S3-compatible server (moto in server mode on
127.0.0.1, real HTTP), listed and loaded back from there with the readers users use."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline._errors import PipelineError
from pipeline.cli import cli
from pipeline.export import ExportOptions, export_sessions
from tests.pipeline.export_kit import jittered, labelled
from tests.pipeline.s3_kit import BUCKET, moto_s3


@pytest.fixture(scope="module")
def s3():
    with moto_s3() as served:
        yield served


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    parent = tmp_path_factory.mktemp("s3-sessions")
    return [labelled(parent, f"s{i}", jittered(10, 0.001 * i)) for i in range(2)]


def _listing(fs, prefix):
    fs.invalidate_cache()
    return sorted(p.removeprefix(f"{BUCKET}/{prefix}/") for p in fs.find(f"{BUCKET}/{prefix}"))


def test_webdataset_to_s3_streams_shards_and_loads_back(s3, sessions, tmp_path, monkeypatch):
    import datasets
    import yaml

    from pipeline.export._storage import Publisher

    fs, endpoint = s3
    local = []  # files in the staging folder each time one is handed over
    send = Publisher.send

    def spy(self, path):
        local.append(sorted(p.name for p in self.staging.rglob("*") if p.is_file()))
        send(self, path)

    monkeypatch.setattr(Publisher, "send", spy)
    counts = export_sessions(sessions, "webdataset", f"s3://{BUCKET}/wds",
                             ExportOptions(shard_mb=0.1, splits=(("train", 0.5), ("val", 0.5))))
    names = _listing(fs, "wds")
    shards = [n for n in names if n.endswith(".tar")]
    assert "README.md" in names and len(shards) == counts["shards"] > 2
    assert {n.split("-")[0] for n in shards} == {"train", "val"}
    # streamed: never more than the one finished shard on local disk
    assert max(len(names) for names in local[: len(shards)]) == 1
    card = fs.cat(f"{BUCKET}/wds/README.md").decode()
    header = yaml.safe_load(card.split("---\n")[1])
    loaded = datasets.load_dataset(
        "webdataset", cache_dir=str(tmp_path / "cache"),
        data_files={s: f"s3://{BUCKET}/wds/{s}-*.tar" for s in ("train", "val")},
        features=datasets.Features._from_yaml_list(header["dataset_info"]["features"]),
        storage_options={"client_kwargs": {"endpoint_url": endpoint}})
    assert {k: len(v) for k, v in loaded.items()} == {"train": 9, "val": 9}
    assert {r["session"] for r in loaded["train"]["json"]} | \
        {r["session"] for r in loaded["val"]["json"]} == {"s0", "s1"}


def test_parquet_and_lerobot_to_s3_load_back(s3, sessions, tmp_path, monkeypatch):
    import datasets
    import pyarrow.parquet as pq

    from pipeline.export._storage import Publisher

    fs, endpoint = s3
    export_sessions(sessions, "parquet", f"s3://{BUCKET}/pq")
    loaded = datasets.load_dataset(
        "parquet", data_files=f"s3://{BUCKET}/pq/data/train-*.parquet", split="train",
        cache_dir=str(tmp_path / "cache"),
        storage_options={"client_kwargs": {"endpoint_url": endpoint}})
    assert len(loaded) == 18 and loaded[0]["image"].mode == "RGB"
    staged = []  # (file handed over, videos in the staging folder then)
    send = Publisher.send

    def spy(self, path):
        staged.append((path.name, sorted(p.name for p in self.staging.rglob("*.mp4"))))
        send(self, path)

    monkeypatch.setattr(Publisher, "send", spy)
    counts = export_sessions(sessions, "lerobot", f"s3://{BUCKET}/lr")
    names = _listing(fs, "lr")
    videos = ["videos/observation.images.main/chunk-000/file-000.mp4",
              "videos/observation.images.main/chunk-000/file-001.mp4"]
    assert names == sorted(["README.md", "meta/info.json", "meta/stats.json",
                            "meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet",
                            "data/chunk-000/file-000.parquet", *videos])
    # the videos went straight to the store: none was staged or handed over from disk
    assert staged and all(not mp4 and not name.endswith(".mp4") for name, mp4 in staged)
    # each is a fragmented MP4 holding its episode's frames at pts 0, 1, 2, ...; the same
    # pictures as the plain MP4 of an export to a folder
    export_sessions(sessions, "lerobot", tmp_path / "local")
    episodes = pq.read_table(fs.open(f"{BUCKET}/lr/meta/episodes/chunk-000/file-000.parquet"))
    for video, length in zip(videos, episodes["length"].to_pylist(), strict=True):
        data = fs.cat(f"{BUCKET}/lr/{video}")
        assert data[4:8] == b"ftyp" and b"moof" in data and b"mvex" in data
        streamed = _decoded(io.BytesIO(data))
        local = _decoded(tmp_path / "local" / video)
        assert [pts for pts, _ in streamed] == list(range(length)) == [p for p, _ in local]
        for (_, a), (_, b) in zip(streamed, local, strict=True):
            np.testing.assert_array_equal(a, b)
    info = json.loads(fs.cat(f"{BUCKET}/lr/meta/info.json"))
    assert info["total_frames"] == counts["frames"]


def _decoded(source):
    """(pts, RGB pixels) of every frame of an MP4, decoded with PyAV."""
    import av

    with av.open(source if isinstance(source, io.BytesIO) else str(source)) as container:
        return [(frame.pts, frame.to_ndarray(format="rgb24"))
                for frame in container.decode(video=0)]


def test_object_storage_refuses_a_used_prefix_and_cleans_up_a_failure(s3, sessions, tmp_path):
    fs, _ = s3
    fs.pipe(f"{BUCKET}/used/keep.txt", b"keep me")
    with pytest.raises(PipelineError, match="already holds objects"):
        export_sessions(sessions, "coco", f"s3://{BUCKET}/used")
    assert _listing(fs, "used") == ["keep.txt"]
    # a failure after some images were uploaded: the frames of the video run out
    (sessions[1] / "video.mkv").write_bytes((sessions[1] / "video.mkv").read_bytes()[:4000])
    with pytest.raises(PipelineError):
        export_sessions(sessions, "coco", f"s3://{BUCKET}/broken")
    assert _listing(fs, "broken") == []
    # the first episode's video was streamed up whole and the second's in part: both removed
    with pytest.raises(PipelineError):
        export_sessions(sessions, "lerobot", f"s3://{BUCKET}/broken-lr")
    assert _listing(fs, "broken-lr") == []


def test_export_command_takes_an_s3_url(s3, sessions):
    fs, _ = s3
    result = CliRunner().invoke(cli, ["export", str(sessions[0]), "--format", "coco",
                                      "--out", f"s3://{BUCKET}/cli"])
    assert result.exit_code == 0, result.output
    names = _listing(fs, "cli")
    assert "annotations_train.json" in names and sum(n.endswith(".jpg") for n in names) == 9


def test_cleanup_that_cannot_reach_the_store_warns_once_per_object(s3, tmp_path, caplog):
    import logging

    from pipeline.export._storage import Publisher

    fs, _ = s3
    fs.mkdir("gone")
    staging = tmp_path / "staging"
    (staging / "meta").mkdir(parents=True)
    for rel in ("meta/info.json", "README.md"):
        (staging / rel).write_text(rel)
    publisher = Publisher("s3://gone/ds", staging)
    publisher.finish()
    assert sorted(fs.find("gone")) == ["gone/ds/README.md", "gone/ds/meta/info.json"]
    fs.rm("gone", recursive=True)  # the store goes away before the failed export is undone
    with caplog.at_level(logging.WARNING, logger="pipeline.export._storage"):
        publisher.abort()  # best effort: logged, not raised
    warned = [r.getMessage() for r in caplog.records if r.name == "pipeline.export._storage"]
    assert warned == [f"could not remove s3://gone/ds/{rel}: The specified bucket does not exist"
                      for rel in ("README.md", "meta/info.json")]
    assert publisher.sent == {}
