"""THE integration test: `stpe demo --seconds 5` under Xvfb, checked against the game's log."""

from __future__ import annotations

import itertools
import json
import shutil

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from capture import Session
from pipeline.cli import cli
from pipeline.demo import read_truth, visible_seqs

pytestmark = [pytest.mark.slow, pytest.mark.x11,
              pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb not installed")]
FPS = 30


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DISPLAY", raising=False)  # the demo starts (and stops) its own Xvfb
        run = CliRunner().invoke(cli, ["demo", "--out", str(out), "--seconds", "5",
                                       "--fps", str(FPS)])
    assert run.exit_code == 0, (run.output, run.exception)
    (session,) = (out / "sessions").iterdir()
    return out, Session.open(session), run.output


def _stalls(out) -> list[tuple[int, int]]:
    """Stretches of more than 0.25 s in which the game, in its own process, showed nothing:
    the whole machine stalled (a shared VM does), so no recorder could grab on time."""
    shown = [f.shown_begin_ns for f in read_truth(out / "truth.jsonl")]
    return [(a, b) for a, b in itertools.pairwise(shown) if b - a > 0.25e9]


def test_frames_are_recorded_at_the_target_rate(demo):
    out, session, output = demo
    grabs = session.read_frames()["grab_start_ns"].to_numpy()
    stalls = _stalls(out)
    stalled_ns = sum(min(b, grabs[-1]) - max(a, grabs[0]) for a, b in stalls
                     if b > grabs[0] and a < grabs[-1])
    during = sum(int(((grabs > a) & (grabs < b)).sum()) for a, b in stalls)
    assert stalled_ns < 0.2 * (grabs[-1] - grabs[0]), stalls
    rate = (len(grabs) - 1 - during) / ((grabs[-1] - grabs[0] - stalled_ns) / 1e9)
    assert rate >= 0.95 * FPS, (rate, stalls)
    assert "stpe demo" in output and "timecode" in output


def test_every_timecode_frame_is_aligned_to_the_sample_on_screen(demo):
    out, session, _ = demo
    shown = read_truth(out / "truth.jsonl")
    aligned = pq.read_table(session.file("aligned")).to_pylist()
    frames = {r["index"]: r for r in session.read_frames().to_pylist()}
    during_play = [r for r in aligned
                   if shown[0].shown_end_ns <= r["grab_start_ns"] <= shown[-1].shown_begin_ns]
    timecode = [r for r in during_play if r["method"] == "timecode"]
    report = json.loads(session.file("alignment").read_text())
    assert len(timecode) >= 0.95 * len(during_play), report["timecode"]
    for row in timecode:
        grab = frames[row["frame_index"]]
        assert row["seq"] in visible_seqs(shown, grab["grab_start_ns"], grab["grab_end_ns"])


def _marker_box_centre(rgb: np.ndarray) -> tuple[float, float] | None:
    """The centre of the box around clearly magenta pixels (pixel-centre convention): found
    here, not with the demo's own (weighted) `marker_centroid` that wrote check.json."""
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    ys, xs = np.nonzero((r > 160) & (b > 160) & (g < 110))
    if xs.size == 0:
        return None
    return (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2


def test_projected_root_is_within_a_pixel_of_the_drawn_marker(demo):
    _, session, _ = demo
    labels = {r["frame_index"]: r for r in pq.read_table(session.file("labels")).to_pylist()}
    errors = []
    for frame in session.iter_frames():
        row = labels.get(frame.index)
        if row is None or row["method"] != "timecode" or row["root_px"] is None:
            continue
        found = _marker_box_centre(frame.image)
        assert found is not None
        errors.append(np.hypot(found[0] - row["root_px"][0], found[1] - row["root_px"][1]))
    assert len(errors) >= 100
    assert max(errors) <= 1.0
    check = json.loads((session.path.parent.parent / "check.json").read_text())
    assert check["root_px_checked"] == len(errors)
    # the demo's own check, with its own marker finder, says the same within half a pixel
    assert check["root_px_error_max"] <= 1.0
    assert abs(check["root_px_error_max"] - max(errors)) < 0.5


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_exports_and_overlay_load(demo):
    import datasets
    import webdataset as wds

    out, session, _ = demo
    labelled = pq.read_table(session.file("labels")).num_rows
    shards = sorted(str(p) for p in (out / "webdataset").glob("train-*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False).decode("rgb"))
    assert 0 < len(samples) <= labelled
    assert samples[0]["jpg"].shape == (720, 1280, 3)
    info = json.loads((out / "lerobot" / "meta" / "info.json").read_text())
    data = datasets.load_dataset("parquet", split="train", data_files=sorted(
        str(p) for p in (out / "lerobot" / "data").rglob("*.parquet")))
    assert len(data) == info["total_frames"]  # constant-rate rows, not one per sample
    with av.open(str(out / "overlay.mp4")) as container:
        overlay_frames = sum(1 for _ in container.decode(video=0))
    assert overlay_frames == session.read_frames().num_rows
