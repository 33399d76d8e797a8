"""The LeRobot export loaded by the real `lerobot` (0.6, Python 3.12, its own torch and
torchcodec) in the isolated environment scripts/lerobot-env.sh builds, found through
STPE_LEROBOT_PYTHON; that environment's `datasets` 4.8 also loads the WebDataset and
Parquet exports (the project's own environment checks `datasets` 5). Skipped locally
without it, a failure in CI (CI=true).

What LeRobot read is checked against files walked with pyarrow and against an independent
oracle of the resampling, never through pipeline.export's own readers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from capture import Session
from pipeline.export import ExportOptions, export_sessions
from pipeline.labels import read_labels
from tests.pipeline.export_kit import SIZE, STRIP, jittered, labelled, nearest_oracle
from tests.pipeline.s3_kit import BUCKET, moto_s3
from tests.pipeline.session_kit import frame_image

PROBE = Path(__file__).with_name("lerobot_probe.py")
FPS = 30
# the first test also pays for the probe (torch import, every LeRobot operation): minutes
pytestmark = pytest.mark.timeout(900)


def lerobot_python() -> Path:
    """The isolated environment's python, or a skip (a failure in CI) naming how to build it."""
    value = os.environ.get("STPE_LEROBOT_PYTHON", "")
    if value and Path(value).is_file():
        return Path(value)
    reason = ("the lerobot environment is not built: run `bash scripts/lerobot-env.sh` and "
              "export STPE_LEROBOT_PYTHON=<the path it prints>")
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_LEROBOT_HOME": str(home / "lerobot"),
            "HF_HOME": str(home / "hf"), "PYTHONPATH": ""}


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    python = lerobot_python()
    work = tmp_path_factory.mktemp("interop")
    paths = [labelled(work, "s1", jittered(40, 0.0013, drop_every=7)),
             labelled(work, "s2", jittered(30, 0.0021))]
    export_sessions(paths, "lerobot", work / "both")
    export_sessions(paths[:1], "lerobot", work / "a")
    export_sessions(paths[1:], "lerobot", work / "b")
    hub = [work / "webdataset", work / "parquet"]
    for folder in hub:
        export_sessions(paths, folder.name, folder,
                        ExportOptions(splits=(("train", 0.5), ("test", 0.5))))
    with moto_s3() as (fs, _):  # videos streamed to the store, then fetched as stored
        export_sessions(paths, "lerobot", f"s3://{BUCKET}/both")
        fs.get(f"{BUCKET}/both/", str(work / "streamed"), recursive=True)
    out = work / "probe"
    out.mkdir()
    subprocess.run([str(python), str(PROBE), str(out), str(work / "both"),
                    str(work / "streamed"), str(work / "a"), str(work / "b"), *map(str, hub)],
                   check=True, env=_env(work), timeout=900)
    read = {name: dict(np.load(out / f"{name}.npz")) for name in
            ("load", "streamed", "delta", "split", "merge", "hub")}
    return {"python": python, "work": work, "sessions": paths, **read}


def _oracle_rows(path):
    """The labels rows with state: the frames every format exports."""
    labels = read_labels(Session.open(path))
    return labels.filter(labels["K"].is_valid())


def _oracle(path):
    """(source frame index per row, its capture time) by the brute-force oracle."""
    labels = _oracle_rows(path)
    t = labels["t"].to_numpy()
    nearest = nearest_oracle(t, FPS)
    return labels["frame_index"].to_numpy()[nearest], t[nearest]


def _source_image(index: int) -> np.ndarray:
    """The frame the session recorded, with the strip painted black as the export does."""
    image = frame_image(int(index), *SIZE).astype(np.float64)
    x0, y0, x1, y1 = STRIP
    image[y0:y1, x0:x1] = 0
    return image


def _assert_frames_match(frames, sources):
    """Each decoded frame is close to its source frame, and closer than to the neighbours."""
    for frame, index in zip(frames, sources, strict=True):
        errors = {d: np.abs(frame - _source_image(index + d)).mean() for d in (-1, 0, 1)}
        assert errors[0] < 6.0, (index, errors)
        assert errors[0] < min(errors[-1], errors[1]), (index, errors)


def test_lerobot_reads_every_item_with_its_defaults(probed):
    got = probed["load"]
    assert str(got["backend"]) == "torchcodec" and int(got["fps"]) == FPS
    data = pq.read_table(probed["work"] / "both/data/chunk-000/file-000.parquet")
    episodes = pq.read_table(
        probed["work"] / "both/meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert len(got["index"]) == data.num_rows
    expected_ep, expected_frame, expected_source, expected_t = [], [], [], []
    for ep, path in enumerate(probed["sessions"]):
        sources, times = _oracle(path)
        assert episodes[ep]["length"] == len(sources)
        expected_ep += [ep] * len(sources)
        expected_frame += list(range(len(sources)))
        expected_source += sources.tolist()
        expected_t += times.tolist()
    # LeRobot's view, the files walked with pyarrow and the oracle agree
    for name, expected in (("episode_index", expected_ep), ("frame_index", expected_frame),
                           ("source_frame_index", expected_source)):
        assert got[name].astype(int).tolist() == expected, name
        assert data[name].to_pylist() == expected, name
    assert got["index"].astype(int).tolist() == list(range(data.num_rows))
    for ep, e in enumerate(episodes):
        rows = data.slice(e["dataset_from_index"], e["length"])
        assert set(rows["episode_index"].to_pylist()) == {ep}
    np.testing.assert_allclose(got["capture_t"], expected_t, atol=1e-9)
    np.testing.assert_allclose(got["timestamp"], np.array(expected_frame) / FPS, atol=1e-6)
    tasks = pq.read_table(probed["work"] / "both/meta/tasks.parquet").to_pandas()
    task_of = {int(i): name for name, i in zip(tasks.index, tasks["task_index"], strict=True)}
    assert got["task"].tolist() == [task_of[int(i)] for i in data["task_index"].to_pylist()]
    assert got["caption"].tolist() == data["caption"].to_pylist()
    _assert_frames_match(got["frames"].astype(np.float64), expected_source)


def test_lerobot_reads_an_export_streamed_to_object_storage(probed):
    # the fragmented MP4s written straight to S3 read as the folder export's plain ones
    local, streamed = probed["load"], probed["streamed"]
    assert sorted(streamed) == sorted(local)
    for name in local:
        np.testing.assert_array_equal(streamed[name], local[name], err_msg=name)
    assert (probed["work"] / "streamed/videos/observation.images.main/chunk-000/file-001.mp4"
            ).read_bytes().count(b"moof") > 1


def test_delta_timestamps_return_the_neighbouring_rows(probed):
    got, load = probed["delta"], probed["load"]
    episode, frame = load["episode_index"].astype(int), load["frame_index"].astype(int)
    lengths = np.bincount(episode)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for i in range(len(episode)):
        for j, d in enumerate((-2, 0, 3)):
            k = frame[i] + d
            inside = 0 <= k < lengths[episode[i]]
            row = starts[episode[i]] + min(max(k, 0), lengths[episode[i]] - 1)
            assert bool(got["pad"][i, j]) is (not inside)
            assert bool(got["video_pad"][i, j]) is (not inside)
            assert got["source_frame_index"][i, j] == load["source_frame_index"][row]
            np.testing.assert_array_equal(got["frames"][i, j], load["frames"][row])


def test_split_dataset_keeps_every_frame(probed):
    got, load = probed["split"], probed["load"]
    episode = load["episode_index"].astype(int)
    for name, rows in (("first", episode == 0), ("rest", episode != 0)):
        assert got[f"{name}.source_frame_index"].tolist() == \
            load["source_frame_index"][rows].tolist()
        assert got[f"{name}.frame_index"].tolist() == load["frame_index"][rows].tolist()
        assert set(got[f"{name}.episode_index"].astype(int).tolist()) == {0}
        _assert_frames_match(got[f"{name}.frames"].astype(np.float64),
                             load["source_frame_index"][rows].astype(int))


def test_merge_datasets_of_two_exports_at_one_rate(probed):
    got = probed["merge"]
    sources = [_oracle(p)[0] for p in probed["sessions"]]
    assert int(got["fps"]) == FPS
    assert got["episode_index"].astype(int).tolist() == \
        [0] * len(sources[0]) + [1] * len(sources[1])
    merged = np.concatenate(sources)
    assert got["source_frame_index"].astype(int).tolist() == merged.tolist()
    assert got["index"].astype(int).tolist() == list(range(len(merged)))
    _assert_frames_match(got["frames"].astype(np.float64), merged)


def test_lerobot_dataset_viz_loads_an_episode(probed, tmp_path):
    viz = probed["python"].with_name("lerobot-dataset-viz")
    result = subprocess.run(
        [str(viz), "--repo-id", "local/stpe", "--root", str(probed["work"] / "both"),
         "--episode-index", "1", "--save", "1", "--output-dir", str(tmp_path),
         "--mode", "local", "--num-workers", "0"],
        env=_env(tmp_path), timeout=600, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads((probed["work"] / "both/meta/info.json").read_text())
    assert info["total_episodes"] == 2
    assert (tmp_path / "local_stpe_episode_1.rrd").stat().st_size > 10_000


def test_datasets_4_8_loads_webdataset_and_parquet_from_their_cards(probed):
    sizes = {k: int(v) for k, v in probed["hub"].items()}
    frames = [len(_oracle_rows(p)) for p in probed["sessions"]]
    for fmt in ("webdataset", "parquet"):
        assert sorted([sizes[f"{fmt}.train"], sizes[f"{fmt}.test"]]) == sorted(frames)

