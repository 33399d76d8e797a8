"""Labels of a session aligned by the real aligner from a simulated capture: clock-matched
rows whose state is interpolated between samples, checked against the engine's own camera
(`pipeline.demo._engine`) and against the truth the samples were drawn from."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alignment import read_aligned
from capture import Session
from capture._synthetic import synthetic_sample
from pipeline.camera import look_at
from pipeline.demo._engine import EngineCamera
from pipeline.labels import compute_labels
from tests.pipeline.session_kit import make_simulated_session

FOV, VIEWPORT, SIZE = 70.0, (1280.0, 720.0), (960, 540)  # captured at 0.75 x


def _camera_at(t: float, root: list[float]) -> list[float]:
    """A camera circling the character at 1 rad/s, 20 studs out and 8 up, looking 4 studs
    to the world's +X of it: the root is off the image centre and moves across the image."""
    x, y, z = root
    eye = [x + 20 * math.sin(t), y + 8.0, z + 20 * math.cos(t)]
    return look_at(eye, [x + 4.0, y + 1.0, z]).tolist()


def _sample(seq: int, t: float) -> dict:
    """The synthetic character, seen by the circling camera; the engine's projection comes
    from the engine's own camera."""
    sample = synthetic_sample(seq, t)
    cam = _camera_at(t, sample["character"]["root"]["cframe"][:3])
    engine = EngineCamera.of(np.array(cam), FOV, VIEWPORT)
    root = np.array([sample["character"]["root"]["cframe"][:3]])
    sample["camera"].update(cframe=cam, fov_y=FOV, viewport=list(VIEWPORT),
                            root_projection=engine.world_to_viewport_point(root)[0].tolist())
    return sample


@pytest.fixture(scope="module")
def aligned_session(tmp_path_factory):
    path, sim = make_simulated_session(tmp_path_factory.mktemp("clock"), _sample,
                                       duration_s=2.0, size=SIZE, seed=3)
    return path, sim, compute_labels(Session.open(path)).table.to_pylist()


def test_rows_are_clock_matched_and_interpolated(aligned_session):
    path, sim, _ = aligned_session
    rows = read_aligned(Session.open(path)).to_pylist()
    assert {r["method"] for r in rows} == {"clock"}
    assert np.mean([abs(r["residual_ms"]) > 0.1 for r in rows]) > 0.9
    sample_t = set(sim.client_t.tolist())
    assert np.mean([r["client_t"] not in sample_t for r in rows]) > 0.9
    seq = np.array([r["seq"] for r in rows])
    assert np.abs(seq - sim.true_seq).max() <= 1


def test_labels_project_the_interpolated_state(aligned_session):
    path, _, labels = aligned_session
    rows = read_aligned(Session.open(path)).to_pylist()
    assert len(labels) == len(rows) > 100
    for row, label in zip(rows, labels, strict=True):
        engine = EngineCamera.of(np.array(row["camera.cframe"]), row["camera.fov_y"],
                                 tuple(row["camera.viewport"]))
        root = engine.world_to_viewport_point(np.array([row["character.root.cframe"][:3]]))[0]
        expected = root[:2] * np.array(row["capture_scale"]) + np.array(row["capture_offset"])
        np.testing.assert_allclose(label["root_px"], expected, atol=1e-6)
        crate_world = np.array([row["entities"][0]["cframe"][:3]])
        view = engine.view_coordinates(crate_world)[0]
        crate = next(o for o in label["objects"] if o["id"] == "crate-1")
        assert crate["depth"] == pytest.approx(view[2], abs=1e-9)
        assert crate["distance"] == pytest.approx(np.linalg.norm(view), abs=1e-9)
    np.testing.assert_allclose(rows[5]["capture_scale"], [0.75, 0.75], atol=1e-3)
    px = np.array([label["root_px"] for label in labels])
    assert (px.min(axis=0) > 0).all() and (px.max(axis=0) < SIZE).all()  # on screen
    assert np.ptp(px[:, 0]) > 50  # and moving across it


def test_interpolated_labels_stay_near_the_truth(aligned_session):
    """The labels of an interpolated row against the samples' own function evaluated at the
    row's client time: within a pixel (at ~60 Hz the path bends little between samples).
    The engine's interpolated projection (root_px_engine) and the projection of the
    interpolated state differ by less than a pixel too, but not by nothing."""
    path, _, labels = aligned_session
    rows = read_aligned(Session.open(path)).to_pylist()
    errors = []
    for row, label in zip(rows, labels, strict=True):
        truth = _sample(0, row["client_t"])
        engine = EngineCamera.of(np.array(truth["camera"]["cframe"]), FOV, VIEWPORT)
        root = np.array([truth["character"]["root"]["cframe"][:3]])
        px = (engine.world_to_viewport_point(root)[0, :2] * np.array(row["capture_scale"])
              + np.array(row["capture_offset"]))
        errors.append(np.hypot(*(np.array(label["root_px"]) - px)))
    assert max(errors) < 0.2, max(errors)
    gaps = np.array([label["root_px_error"] for label in labels])
    assert 1e-4 < np.nanmax(gaps) < 0.2
