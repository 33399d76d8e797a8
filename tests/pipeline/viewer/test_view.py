"""`stpe view --save`: an .rrd that Rerun reads back, with the camera posed as the labels say."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipeline._errors import MissingExtraError
from pipeline.cli import cli
from pipeline.viewer import view_session
from tests.pipeline.demo_session import labelled_demo_session


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
    run = CliRunner().invoke(cli, ["view", str(session), "--save", str(rrd)])
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
    with pytest.raises(MissingExtraError, match=r"stpe\[view\]"):
        view_session(session, save=tmp_path / "x.rrd")
    assert not (tmp_path / "x.rrd").exists()
