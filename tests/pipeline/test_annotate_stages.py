"""The annotation stages end to end on synthetic sessions with tiny random-weight models
shaped like the default hub repositories, loaded through the same from_pretrained path as
hub ids (segment and caption have their own test files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline._errors import PipelineError
from pipeline.annotate import AnnotateSettings, annotate, read_labels
from pipeline.annotate._runtime import patch_multiple_size
from tests.pipeline.annotate_fixtures import HEIGHT, WIDTH, make_session

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def settings(models: dict[str, str], **changes) -> AnnotateSettings:
    base = {"models": models, "batch_size": 4, "shard_frames": 8, "max_side": 48,
            "dense_every": 4, "caption_every": 0.1, "max_new_tokens": 6, "clip_frames": 4,
            "clip_stride": 2, "prefetch": 4}
    return AnnotateSettings(**{**base, **changes})


def load_shard(folder: Path, shard: int) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(folder / f"shard-{shard:05d}.safetensors")


def test_embed_files_shapes_and_record(tmp_path, tiny_models) -> None:
    session = make_session(tmp_path, "s1")
    [report] = annotate([session], ["embed"], settings(tiny_models))
    folder = session / "annotations" / "embed"
    assert (report.shards_written, report.shards_skipped) == (2, 0)
    first, second = load_shard(folder, 0), load_shard(folder, 1)
    assert first["frame_index"].tolist() == list(range(8))
    assert second["frame_index"].tolist() == [8, 9, 10, 11]
    assert first["cls"].shape == (8, 32) and first["cls"].dtype == np.float16
    assert first["mean_patch"].dtype == np.float16
    grid = tuple(s // 16 for s in patch_multiple_size(HEIGHT, WIDTH, 16, 48))
    assert grid == (2, 3)  # aspect kept: 96x64 -> 48x32, not a square
    assert first["dense"].shape == (2, *grid, 32)
    assert first["dense_frame_index"].tolist() == [0, 4]
    assert second["dense_frame_index"].tolist() == [8]
    # the mean patch embedding is the mean of the dense grid of the same frame
    np.testing.assert_allclose(first["dense"][1].astype(np.float32).mean(axis=(0, 1)),
                               first["mean_patch"][4].astype(np.float32), atol=2e-3)
    from safetensors import safe_open

    with safe_open(folder / "shard-00000.safetensors", "np") as f:
        assert f.metadata()["grid_h"] == "2" and f.metadata()["grid_w"] == "3"
    sidecar = json.loads((folder / "shard-00000.json").read_text())
    assert sidecar["model_id"] == tiny_models["embed"]
    assert sidecar["model"]["model_class"] == "DINOv3ViTModel"
    assert sidecar["model"]["attn_implementation"] == "sdpa"
    assert sidecar["dtype"] == "fp32"
    assert sidecar["settings"] == {"max_side": 48, "dense_every": 4}
    assert (sidecar["first_frame"], sidecar["last_frame"], sidecar["frames"]) == (0, 7, 8)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["summary"]["frames"] == 12 and meta["summary"]["dense_frames"] == 3


def test_resume_skips_done_shards(tmp_path, tiny_models) -> None:
    session = make_session(tmp_path, "s1")
    folder = session / "annotations" / "embed"
    annotate([session], ["embed"], settings(tiny_models))
    before = load_shard(folder, 1)
    done = (folder / "shard-00000.json").stat().st_mtime_ns
    for name in ("shard-00001.json", "shard-00001.safetensors"):
        (folder / name).unlink()
    [report] = annotate([session], ["embed"], settings(tiny_models))
    assert (report.shards_written, report.shards_skipped) == (1, 1)
    assert (folder / "shard-00000.json").stat().st_mtime_ns == done
    after = load_shard(folder, 1)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    [again] = annotate([session], ["embed"], settings(tiny_models))
    assert (again.shards_written, again.shards_skipped) == (0, 2)
    with pytest.raises(PipelineError, match="dense_every"):
        annotate([session], ["embed"], settings(tiny_models, dense_every=5))


def test_video_clips_span_shard_boundaries(tmp_path, tiny_models) -> None:
    session = make_session(tmp_path, "s1")
    [report] = annotate([session], ["video"], settings(tiny_models))
    folder = session / "annotations" / "video"
    first, second = load_shard(folder, 0), load_shard(folder, 1)
    assert first["start_frame"].tolist() == [0, 2, 4]
    assert second["start_frame"].tolist() == [6, 8]  # clip 6-9 needs frames of shard 0
    assert second["end_frame"].tolist() == [9, 11]
    assert first["clip"].shape == (3, 32) and first["clip"].dtype == np.float16
    assert report.summary["clips"] == 5


def test_missing_labels_names_stpe_labels_and_writes_nothing(tmp_path, tiny_models) -> None:
    session = make_session(tmp_path, "s1", frames=2, labels=False)
    with pytest.raises(PipelineError, match="stpe labels"):
        annotate([session], ["segment"], settings(tiny_models))
    assert not (session / "annotations").exists()


@pytest.mark.parametrize("content", [b"", b"PAR1garbage", b"x" * 5000])
def test_corrupt_labels_are_a_clear_error(tmp_path, tiny_models, content) -> None:
    session = make_session(tmp_path, "s1", frames=2)
    (session / "labels.parquet").write_bytes(content)
    with pytest.raises(PipelineError, match="stpe labels"):
        annotate([session], ["caption"], settings(tiny_models))
    assert not (session / "annotations").exists()


def test_labels_missing_columns_are_named(tmp_path) -> None:
    import pyarrow as pa

    from capture import Session

    session = make_session(tmp_path, "s1", frames=2)
    pq.write_table(pa.table({"frame_index": [0, 1]}), session / "labels.parquet")
    with pytest.raises(PipelineError, match="grounded"):
        read_labels(Session.open(session))


# Ray Data's own DataContext() sets the fields it deprecates (as in test_annotate_ray.py);
# without this the test passed only when that module had created the context first
@pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")
def test_ray_engine_matches_local(tmp_path, tiny_models) -> None:
    ray = pytest.importorskip("ray")
    local = [make_session(tmp_path / "local", f"s{i}", frames=4) for i in range(2)]
    remote = [make_session(tmp_path / "ray", f"s{i}", frames=4) for i in range(2)]
    annotate(local, ["embed"], settings(tiny_models))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        reports = annotate(remote, ["embed"], settings(tiny_models), engine="ray")
    finally:
        ray.shutdown()
    assert sorted(r.session for r in reports) == ["s0", "s1"]
    for a, b in zip(local, remote, strict=True):
        x = load_shard(a / "annotations" / "embed", 0)
        y = load_shard(b / "annotations" / "embed", 0)
        assert x.keys() == y.keys()
        assert all(np.array_equal(x[k], y[k]) for k in x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_embed_bf16_on_cuda(tmp_path, tiny_models) -> None:
    session = make_session(tmp_path, "s1", frames=4)
    annotate([session], ["embed"], settings(tiny_models, device="cuda", dtype="bf16"))
    shard = load_shard(session / "annotations" / "embed", 0)
    assert shard["cls"].dtype == np.float16 and np.isfinite(shard["cls"]).all()


def test_cuda_without_a_device_is_a_clear_error(tmp_path, tiny_models) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    session = make_session(tmp_path, "s1", frames=2)
    with pytest.raises(PipelineError, match="--device cpu"):
        annotate([session], ["embed"], settings(tiny_models, device="cuda"))


def test_video_frames_are_prepared_as_the_vjepa2_processor(tiny_models) -> None:
    from pipeline.annotate._video import VideoStage

    stage = VideoStage(settings(tiny_models))
    stage.load()
    assert (stage.crop, stage.short) == (32, 36)  # video_preprocessor_config.json
    image = np.repeat((np.arange(128) * 2).astype(np.uint8)[None, :, None], 64, axis=0)
    image = np.repeat(image, 3, axis=2)  # 64x128, value 2x at column x
    out = stage._frames([image])[0, 0].numpy() * 0.229 + 0.485  # red channel, un-normalized
    # the processor's way, by hand: shortest edge 64 -> 36 (scale 0.5625, 72 wide), centre
    # crop of 32 starting at column 20; output column c samples x = (20 + c + 0.5) / s - 0.5
    for column in (0, 16, 31):
        x = (20 + column + 0.5) / 0.5625 - 0.5
        assert abs(out[16, column] * 255 - 2 * x) < 2.0, column
