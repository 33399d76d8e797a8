"""`stpe view --save`: an .rrd that Rerun reads back, with the camera posed as the labels say."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline._errors import MissingExtraError
from pipeline.cli import cli
from pipeline.viewer import save_recording
from tests.pipeline.demo_session import labelled_demo_session, unmatched_demo_session


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    path, _ = labelled_demo_session(tmp_path_factory.mktemp("view"), count=6)
    return path


def _columns(rrd):
    from rerun.chunk import RrdReader

    out: dict[tuple[str, str], list] = {}
    for chunk in RrdReader(str(rrd)).store().stream():
        batch = chunk.to_record_batch()
        for name in batch.schema.names:
            out.setdefault((str(chunk.entity_path), name), []).extend(
                batch.column(name).to_pylist())
    return out


def test_saved_recording_reads_back_with_the_labelled_camera(session, tmp_path):
    pytest.importorskip("rerun")
    rrd = tmp_path / "demo.rrd"
    run = CliRunner().invoke(cli, ["view", str(session), "--out", str(rrd)])
    assert run.exit_code == 0, run.output
    assert "6 frames, 6 images" in run.output
    columns = _columns(rrd)
    labels = pq.read_table(session / "labels.parquet").to_pylist()
    translations = columns[("/world/camera", "Transform3D:translation")]
    assert len(translations) == 6
    for got, row in zip(translations, labels, strict=True):
        np.testing.assert_allclose(np.ravel(got), row["cam_position"], atol=1e-4)
    rotations = columns[("/world/camera", "Transform3D:mat3x3")]
    t_cam_world = np.array(labels[0]["T_cam_world"]).reshape(4, 4)
    # rerun stores matrices column-major: flattened, they read as the transpose
    np.testing.assert_allclose(np.reshape(rotations[0], (3, 3)).T, t_cam_world[:3, :3].T,
                               atol=1e-6)
    k = columns[("/world/camera", "Pinhole:image_from_camera")][0]
    np.testing.assert_allclose(np.reshape(k, (3, 3)).T, np.reshape(labels[0]["K"], (3, 3)),
                               atol=1e-4)
    assert len(columns[("/world/camera/image", "EncodedImage:blob")]) == 6
    assert len(columns[("/plots/speed", "Scalars:scalars")]) == 6
    assert len(columns[("/world/entities", "Boxes3D:half_sizes")]) == 6
    assert ("/world/trajectory", "LineStrips3D:strips") in columns


def test_view_without_rerun_names_the_extra(session, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "rerun", None)  # as if rerun-sdk were not installed
    with pytest.raises(MissingExtraError, match=r"pip install -e '\.\[view\]'"):
        save_recording(session, tmp_path / "x.rrd")
    assert not (tmp_path / "x.rrd").exists()


def _stpe(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "80", **(env or {})}, **kwargs)


def test_unmatched_frames_save_a_recording_rerun_reads(tmp_path):
    pytest.importorskip("rerun")
    session = unmatched_demo_session(tmp_path, unmatched=(2, 5))
    rrd = tmp_path / "out.rrd"
    run = CliRunner().invoke(cli, ["view", str(session), "--out", str(rrd)])
    assert run.exit_code == 0, run.output
    columns = _columns(rrd)
    labels = pq.read_table(session / "labels.parquet").to_pylist()
    posed = [row["cam_position"] for row in labels if row["T_cam_world"] is not None]
    assert len(labels) == 8 and len(posed) == 6  # the two unmatched frames hold the pose
    got = columns[("/world/camera", "Transform3D:translation")]
    np.testing.assert_allclose(np.reshape(got, (-1, 3)), posed, atol=1e-4)
    assert len(columns[("/world/camera/image", "EncodedImage:blob")]) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "out.rrd"]


def test_an_existing_file_is_kept_without_overwrite(session, tmp_path):
    rrd = tmp_path / "keep.rrd"
    rrd.write_bytes(b"mine")
    run = CliRunner().invoke(cli, ["view", str(session), "--out", str(rrd)])
    assert run.exit_code == 2 and "--overwrite" in run.output
    assert rrd.read_bytes() == b"mine"
    run = CliRunner().invoke(cli, ["view", str(session), "--out", str(rrd), "--overwrite"])
    assert run.exit_code == 0, run.output
    assert rrd.read_bytes()[:4] == b"RRF2"


def test_without_a_display_view_exits_at_once_with_the_way_out(session):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "pipeline", "view", str(session)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert time.monotonic() - started < 60  # the old command waited on the viewer for ever
    assert run.returncode == 1, run.stderr
    text = " ".join(run.stderr.split())
    assert "no display" in text and "--out FILE.rrd" in text and "Traceback" not in text


def test_the_viewer_is_found_beside_python_without_path(session, tmp_path):
    """An unactivated venv: `rerun` is not on PATH; on a display without a server the
    viewer beside Python starts, fails to open its window, and that is reported."""
    pytest.importorskip("rerun")
    run = _stpe("view", session, env={"PATH": "/usr/bin:/bin", "DISPLAY": ":87",
                                      "WAYLAND_DISPLAY": "", "HOME": str(tmp_path)})
    assert run.returncode == 1, run.stderr
    text = " ".join(run.stderr.split())
    assert "the Rerun viewer exited at once" in text and "X server" in text
    assert "Traceback" not in text and "in PATH" not in text


def test_ctrl_c_while_saving_leaves_no_file(tmp_path):
    pytest.importorskip("rerun")
    session, _ = labelled_demo_session(tmp_path, count=240)
    rrd = tmp_path / "big.rrd"
    partial = tmp_path / ".big.rrd.partial"
    process = subprocess.Popen([sys.executable, "-m", "pipeline", "view", str(session),
                                "--out", str(rrd)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not partial.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert partial.exists(), "the recording was never started"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not rrd.exists() and not partial.exists()
