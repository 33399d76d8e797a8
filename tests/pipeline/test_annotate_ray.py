"""`--engine ray`: frame ranges streamed through Ray Data to model-holding actors, on a
real local Ray cluster (2 CPUs, no GPU, a small object store), against the local path."""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline._errors import PipelineError
from pipeline.annotate import AnnotateSettings, RayOptions, annotate
from pipeline.annotate._ray import plan_ranges
from pipeline.cli import cli
from tests.pipeline.annotate_fixtures import make_session

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
ray = pytest.importorskip("ray")

STAGES = ["embed", "caption", "video"]
# Ray Data's own DataContext() sets the fields it deprecates (ray/data/context.py, 2.60)
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


def settings(models: dict[str, str], **changes) -> AnnotateSettings:
    base = {"models": models, "device": "cpu", "batch_size": 4, "shard_frames": 4,
            "max_side": 48, "clip_frames": 4, "clip_stride": 2, "caption_every": 0.1,
            "max_new_tokens": 8}
    return AnnotateSettings(**{**base, **changes})


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster without a GPU: 2 CPUs, a 80 MB object store."""
    ray.init(num_cpus=2, num_gpus=0, object_store_memory=80 * 1024**2,
             include_dashboard=False, log_to_driver=False)
    yield ray.cluster_resources()
    ray.shutdown()


def test_ranges_are_the_shards_left_to_do(tmp_path, tiny_models) -> None:
    session = make_session(tmp_path, "s1", frames=10)
    ranges, sessions = plan_ranges([session], ["embed", "video"], settings(tiny_models))
    assert [(r.shard, r.start, r.stop, r.stages) for r in ranges] == [
        (0, 0, 4, ("embed", "video")), (1, 4, 8, ("embed", "video")),
        (2, 8, 10, ("embed", "video"))]
    assert sessions[str(session)]["total"] == 10
    annotate([session], ["embed"], settings(tiny_models))  # embed done, video not
    ranges, _ = plan_ranges([session], ["embed", "video"], settings(tiny_models))
    assert [(r.shard, r.stages) for r in ranges] == [(0, ("video",)), (1, ("video",)),
                                                     (2, ("video",))]


def _outputs(session) -> dict[str, object]:
    from safetensors.numpy import load_file

    root = session / "annotations"
    found: dict[str, object] = {}
    for path in sorted(root.glob("*/shard-*.safetensors")):
        found[str(path.relative_to(root))] = load_file(path)
    for path in sorted(root.glob("*/shard-*.parquet")):
        found[str(path.relative_to(root))] = pq.read_table(path).to_pylist()
    return found


def test_ray_results_equal_the_local_path(tmp_path, tiny_models, cluster,
                                          monkeypatch) -> None:
    local = [make_session(tmp_path / "local", f"s{i}", frames=n) for i, n in ((0, 10), (1, 6))]
    remote = [make_session(tmp_path / "ray", f"s{i}", frames=n) for i, n in ((0, 10), (1, 6))]
    # Ray starts its workers with one intra-op thread; the local run uses the same, so
    # every float reduction runs in the same order and the outputs compare exactly.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        annotate(local, STAGES, settings(tiny_models))
    finally:
        torch.set_num_threads(threads)
    seen: list[tuple[str, str, int, int]] = []
    reports = annotate(remote, STAGES, settings(tiny_models), engine="ray",
                       ray=RayOptions(concurrency=2),
                       progress=lambda *args: seen.append(args))
    assert [(r.session, r.stage, r.shards_written, r.shards_skipped) for r in reports] == [
        ("s0", "embed", 3, 0), ("s0", "caption", 3, 0), ("s0", "video", 3, 0),
        ("s1", "embed", 2, 0), ("s1", "caption", 2, 0), ("s1", "video", 2, 0)]
    for a, b in zip(local, remote, strict=True):
        want, got = _outputs(a), _outputs(b)
        assert sorted(want) == sorted(got)
        assert {name.split("/")[0] for name in want} == set(STAGES)
        for name, value in want.items():
            if isinstance(value, dict):
                assert value.keys() == got[name].keys(), name
                for key in value:
                    np.testing.assert_array_equal(value[key], got[name][key], err_msg=name)
            else:
                assert value == got[name], name
        for stage in STAGES:
            meta = json.loads((b / "annotations" / stage / "meta.json").read_text())
            assert meta["model"]["model_id"] == tiny_models[stage]
    # progress: every (session, stage) reaches its frame count
    final = {(s, stage): (done, total) for s, stage, done, total in seen}
    assert final == {(s, stage): (n, n) for s, n in (("s0", 10), ("s1", 6))
                     for stage in STAGES}

    # a second run finds every range done: no actor starts, nothing is rewritten
    def refuse(*args, **kwargs):
        raise AssertionError("no range is left: no actor may start")

    monkeypatch.setattr("pipeline.annotate._ray.RangeAnnotator.__init__", refuse)
    shard = remote[0] / "annotations" / "embed" / "shard-00000.safetensors"
    before = shard.stat().st_mtime_ns
    again = annotate(remote, STAGES, settings(tiny_models), engine="ray")
    assert [(r.shards_written, r.shards_skipped) for r in again] == [(0, 3)] * 3 + [(0, 2)] * 3
    assert shard.stat().st_mtime_ns == before


@pytest.mark.parametrize(("video", "message"), [  # the session store's own errors, as is
    (b"not a video" * 100, r"^cannot open \S+video\.mkv: .*Invalid data found"),
    (None, r"^\S+ has no video \(video\.mkv\)$"),
])
def test_a_worker_failure_is_a_clear_error_and_writes_nothing(tmp_path, tiny_models, cluster,
                                                              video, message) -> None:
    session = make_session(tmp_path, "s1", frames=6)
    path = session / "video.mkv"  # the frame table stays intact: planning passes
    if video is None:
        path.unlink()
    else:
        path.write_bytes(video)
    with pytest.raises(PipelineError, match=message) as error:
        annotate([session], ["embed"], settings(tiny_models), engine="ray")
    assert "Traceback" not in str(error.value) and len(str(error.value)) < 400
    assert not list((session / "annotations").rglob("shard-*"))


def test_an_unexpected_worker_error_names_its_type_and_keeps_finished_shards(
        tmp_path, tiny_models, cluster) -> None:
    import shutil

    session = make_session(tmp_path, "s1", frames=6)
    embed = shutil.copytree(tiny_models["embed"], tmp_path / "embed-model")
    weights = next(embed.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])  # cut short: the actor cannot load it
    with pytest.raises(PipelineError, match=r"^annotating on Ray failed in a worker: \S*Error"
                       r".*; the shards finished before it are kept and a new run resumes "
                       r"after them$") as error:
        annotate([session], ["embed"], settings({**tiny_models, "embed": str(embed)}),
                 engine="ray")
    assert "Traceback" not in str(error.value) and len(str(error.value)) < 400
    assert not list((session / "annotations").rglob("shard-*"))


@pytest.mark.parametrize(("device", "options"), [
    ("cuda", RayOptions()), ("auto", RayOptions(num_gpus=1)), ("cpu", RayOptions(num_gpus=0.5))])
def test_gpus_asked_of_a_cluster_without_one_fail_fast(tmp_path, tiny_models, cluster,
                                                        device, options) -> None:
    session = make_session(tmp_path, "s1", frames=2)
    start = time.monotonic()
    with pytest.raises(PipelineError, match="no GPU"):
        annotate([session], ["embed"], settings(tiny_models, device=device), engine="ray",
                 ray=options)
    assert time.monotonic() - start < 10
    assert not (session / "annotations").exists()


def test_more_actors_than_the_cluster_holds_fail_fast(tmp_path, tiny_models,
                                                     cluster) -> None:
    session = make_session(tmp_path, "s1", frames=2)
    start = time.monotonic()
    with pytest.raises(PipelineError, match=r"--concurrency 3: the actors need 3 CPUs, but "
                                            r"the Ray cluster has 2 CPUs and 0 GPUs"):
        annotate([session], ["embed"], settings(tiny_models), engine="ray",
                 ray=RayOptions(concurrency=3))
    assert time.monotonic() - start < 10
    assert not (session / "annotations").exists()


@pytest.mark.parametrize(("changes", "message"), [
    ({"num_gpus": -1.0}, "--num-gpus -1.0 is not a GPU count"),
    ({"num_gpus": float("nan")}, "--num-gpus nan is not a GPU count"),
    ({"concurrency": 0}, "--concurrency 0 is not positive")])
def test_bad_layouts_are_refused(changes, message) -> None:
    with pytest.raises(PipelineError, match=message):
        RayOptions(**changes)


def test_cli_passes_the_ray_layout_through(tmp_path, tiny_models, cluster) -> None:
    session = make_session(tmp_path, "s1", frames=2)
    base = ["annotate", str(session), "--stages", "embed", "--embed-model",
            tiny_models["embed"], "--max-side", "48"]

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, [*base, *args])
        return result.exit_code, result.output + str(result.exception)

    code, text = run("--num-gpus", "1")
    assert code != 0 and "pass them with --engine ray" in text
    code, text = run("--engine", "ray", "--num-gpus", "1")
    assert code != 0 and "the Ray cluster has no GPU" in text
    assert not (session / "annotations").exists()
    code, text = run("--engine", "ray", "--device", "cpu", "--num-gpus", "0",
                     "--concurrency", "1")
    assert code == 0, text
    assert "s1 embed: 1 shards written, 0 skipped" in text
