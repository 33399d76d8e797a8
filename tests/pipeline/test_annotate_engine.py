"""The engine: one decode per session for all stages, models loaded once, device and
model-size checks before anything loads, frame ranges decoded from a seek."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from capture import Session
from pipeline._errors import PipelineError
from pipeline.annotate import AnnotateSettings, annotate
from pipeline.annotate._embed import EmbedStage
from pipeline.annotate._engine import resolve_device
from pipeline.annotate._video import VideoStage
from tests.pipeline.annotate_fixtures import make_session

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def settings(models: dict[str, str], **changes) -> AnnotateSettings:
    base = {"models": models, "device": "cpu", "batch_size": 4, "shard_frames": 4,
            "max_side": 48, "clip_frames": 4, "clip_stride": 2}
    return AnnotateSettings(**{**base, **changes})


@pytest.fixture
def counters(monkeypatch) -> dict[str, int]:
    counts = {"decodes": 0, "loads": 0}
    iter_frames, embed_load, video_load = Session.iter_frames, EmbedStage.load, VideoStage.load

    def counted_iter(self, *args, **kwargs):
        counts["decodes"] += 1
        return iter_frames(self, *args, **kwargs)

    def counted(load):
        def wrapper(self):
            counts["loads"] += 1
            return load(self)
        return wrapper

    monkeypatch.setattr(Session, "iter_frames", counted_iter)
    monkeypatch.setattr(EmbedStage, "load", counted(embed_load))
    monkeypatch.setattr(VideoStage, "load", counted(video_load))
    return counts


def test_one_decode_per_session_and_one_load_per_model(tmp_path, tiny_models,
                                                       counters) -> None:
    sessions = [make_session(tmp_path, f"s{i}", frames=10) for i in range(2)]
    reports = annotate(sessions, ["embed", "video"], settings(tiny_models))
    assert [(r.session, r.stage, r.shards_written) for r in reports] == [
        ("s0", "embed", 3), ("s0", "video", 3), ("s1", "embed", 3), ("s1", "video", 3)]
    assert counters == {"decodes": 2, "loads": 2}


def test_one_model_at_a_time_decodes_per_stage(tmp_path, tiny_models, counters) -> None:
    session = make_session(tmp_path, "s1", frames=10)
    together = make_session(tmp_path / "other", "s1", frames=10)
    annotate([session], ["embed", "video"], settings(tiny_models, keep_models=False))
    assert counters == {"decodes": 2, "loads": 2}
    annotate([together], ["embed", "video"], settings(tiny_models))
    from safetensors.numpy import load_file

    for stage in ("embed", "video"):  # same results either way
        a = load_file(session / "annotations" / stage / "shard-00001.safetensors")
        b = load_file(together / "annotations" / stage / "shard-00001.safetensors")
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_device_auto_resolves_before_loading() -> None:
    resolved = resolve_device(AnnotateSettings(device="auto"))
    assert resolved.device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_a_7b_default_on_cpu_is_refused_before_loading(tmp_path, counters) -> None:
    session = make_session(tmp_path, "s1", frames=2)
    with pytest.raises(PipelineError, match="--allow-large-on-cpu") as error:
        annotate([session], ["embed"], AnnotateSettings(device="cpu"))
    assert "facebook/dinov3-vit7b16-pretrain-lvd1689m" in str(error.value)
    assert counters["loads"] == 0 and not (session / "annotations").exists()


def test_frame_stream_hands_frames_over_as_they_are_decoded() -> None:
    from capture import VideoFrame
    from pipeline.annotate._inputs import FrameStream

    stream = FrameStream(3)
    frames = [VideoFrame(i, i, np.zeros((2, 2, 3), np.uint8)) for i in range(3)]
    got: list = []
    reader = threading.Thread(target=lambda: got.append(stream[0:2]))
    reader.start()
    stream.append(frames[0])
    time.sleep(0.2)
    assert reader.is_alive() and len(stream) == 3  # frame 1 is not decoded yet
    stream.append(frames[1])
    reader.join(5)
    assert [f.index for f in got[0]] == [0, 1]
    stream.finish()  # the video ended one frame early
    assert len(stream) == 2 and [f.index for f in stream] == [0, 1]
    with pytest.raises(IndexError):
        stream[2]
    broken = FrameStream(2)
    broken.finish(ValueError("corrupt packet"))
    with pytest.raises(ValueError, match="corrupt packet"):
        broken[0]


def test_prefetched_shards_are_the_decoded_frames(tmp_path) -> None:
    from pipeline.annotate._inputs import prefetch_shards

    session = Session.open(make_session(tmp_path, "s1", frames=10))
    decoded = list(session.iter_frames())
    shards = list(prefetch_shards(session, 4, 2, 1))
    assert [(k, [f.index for f in frames], [f.index for f in before])
            for k, frames, before in shards] == [
        (0, [0, 1, 2, 3], []), (1, [4, 5, 6, 7], [2, 3]), (2, [8, 9], [6, 7])]
    assert all(np.array_equal(a.image, b.image)
               for a, b in zip(decoded, [f for _, s, _ in shards for f in s], strict=True))
    assert [k for k, _, _ in prefetch_shards(session, 4, 0, 1, last=1)] == [0, 1]


def test_decoding_from_a_frame_seeks_and_yields_the_same_frames(tmp_path) -> None:
    # 150 frames at 30 fps: the encoder puts a keyframe every 60 frames (g = 2 x fps), so
    # starts 59, 60, 61 and 130 land before, on and after keyframes 60 and 120
    session = Session.open(make_session(tmp_path, "s1", frames=150, labels=False))
    decoded = list(session.iter_frames())
    assert [f.index for f in decoded] == list(range(150))
    for start in (1, 59, 60, 61, 130, 149):
        part = list(session.iter_frames(start))
        assert [f.index for f in part] == list(range(start, 150)), start
        assert all(np.array_equal(a.image, b.image) and a.pts_us == b.pts_us
                   for a, b in zip(decoded[start:], part, strict=True)), start
    assert list(session.iter_frames(150)) == []
