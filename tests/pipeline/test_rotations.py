"""Rotations, quaternions and distances against an independent implementation.

The oracle is a from-scratch Hamilton quaternion (product and `q v q*` rotation, as in
Shoemake, "Animating rotation with quaternion curves", SIGGRAPH 1985, and
https://en.wikipedia.org/wiki/Quaternions_and_spatial_rotation): it never builds a rotation
matrix with a formula, only by rotating the basis vectors, so it shares no code or algebra
with `pipeline.camera.quat_xyzw`. Random rotations cover every axis, both quaternion signs
and half turns (w = 0, where a sign can silently flip). Distances and depths are checked on
boxes off the optical axis, where they differ.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from capture import Session
from capture._synthetic import synthetic_sample
from pipeline import camera
from pipeline.labels import compute_labels
from pipeline.labels._geometry import boxes, camera_labels
from tests.pipeline.session_kit import make_session

IDENTITY = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
YAW_LEFT_90 = [0.0, 0.0, 1.0, 0.0, 1.0, 0.0, -1.0, 0.0, 0.0]  # CFrame.Angles(0, pi/2, 0)


def hamilton(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The Hamilton product of quaternions ordered x, y, z, w (..., 4)."""
    px, py, pz, pw = np.moveaxis(p, -1, 0)
    qx, qy, qz, qw = np.moveaxis(q, -1, 0)
    return np.stack([pw * qx + px * qw + py * qz - pz * qy,
                     pw * qy - px * qz + py * qw + pz * qx,
                     pw * qz + px * qy - py * qx + pz * qw,
                     pw * qw - px * qx - py * qy - pz * qz], axis=-1)


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors (..., 3) by unit quaternions (..., 4): the vector part of q v q*."""
    pure = np.concatenate([v, np.zeros((*np.shape(v)[:-1], 1))], axis=-1)
    conj = q * np.array([-1.0, -1.0, -1.0, 1.0])
    return hamilton(hamilton(q, pure), conj)[..., :3]


def matrix_of(q: np.ndarray) -> np.ndarray:
    """The rotation matrix (..., 3, 3) whose columns are the rotated basis vectors."""
    basis = np.broadcast_to(np.eye(3), (*q.shape[:-1], 3, 3))
    return np.stack([rotate(q, basis[..., i, :]) for i in range(3)], axis=-1)


def axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    half = np.asarray(angle)[..., None] / 2
    return np.concatenate([axis * np.sin(half), np.cos(half)], axis=-1)


def _same_rotation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Distance between unit quaternions up to sign (q and -q are the same rotation)."""
    return np.minimum(np.abs(p - q).max(axis=-1), np.abs(p + q).max(axis=-1))


def _random_quaternions(n: int, seed: int) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)  # both signs of w, uniform


# ---- the oracle itself -----------------------------------------------------------------------

def test_oracle_by_hand():
    quarter_y = axis_angle(np.array([0.0, 1.0, 0.0]), np.array(math.pi / 2))
    # right-handed: +90 degrees about +Y takes +X to -Z and +Z to +X
    np.testing.assert_allclose(rotate(quarter_y, np.array([1.0, 0, 0])), [0, 0, -1], atol=1e-15)
    np.testing.assert_allclose(rotate(quarter_y, np.array([0, 0, 1.0])), [1, 0, 0], atol=1e-15)
    np.testing.assert_allclose(matrix_of(quarter_y), np.reshape(YAW_LEFT_90, (3, 3)),
                               atol=1e-15)
    quarter_x = axis_angle(np.array([1.0, 0, 0]), np.array(math.pi / 2))
    np.testing.assert_allclose(rotate(quarter_x, np.array([0, 1.0, 0])), [0, 0, 1], atol=1e-15)
    # composition: first about X, then about Y
    both = hamilton(quarter_y, quarter_x)
    np.testing.assert_allclose(matrix_of(both), matrix_of(quarter_y) @ matrix_of(quarter_x),
                               atol=1e-15)


# ---- quat_xyzw against the oracle ------------------------------------------------------------

def test_quat_round_trip_on_random_rotations_both_signs():
    q = _random_quaternions(4000, seed=3)
    for sign in (1.0, -1.0):
        back = camera.quat_xyzw(matrix_of(sign * q))
        assert _same_rotation(back, q).max() < 1e-12
        assert (back[:, 3] >= 0).all()  # the documented sign: w >= 0
        np.testing.assert_allclose(np.linalg.norm(back, axis=-1), 1.0, atol=1e-15)
        v = np.random.default_rng(4).normal(size=(len(q), 3))
        np.testing.assert_allclose(rotate(back, v), rotate(q, v), atol=1e-12)


@pytest.mark.parametrize("axis", [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, -1, 0], [1, 0, -1],
                                  [0, 1, -1], [1, 1, 1], [-2, 1, 3], [0.3, -0.1, -0.9]])
@pytest.mark.parametrize("angle", [0.0, 0.5, math.pi / 2, 3.0, math.pi, -2.0])
def test_quat_of_every_axis_and_half_turns(axis, angle):
    q = axis_angle(np.array(axis, float), np.array(angle))
    back = camera.quat_xyzw(matrix_of(q))
    assert _same_rotation(back, q) < 1e-12, (back, q)
    assert np.linalg.norm(back) == pytest.approx(1.0)


def test_camera_quaternion_turns_opencv_axes_into_the_cframe_vectors():
    """cam_quat_xyzw is camera-to-world with OpenCV camera axes: it takes +z (forward) to the
    LookVector, +x to the RightVector and +y (down) to minus the UpVector. Level cameras
    (pitch 0) are half turns, the case a per-component sign rule gets wrong."""
    rng = np.random.default_rng(5)
    q = _random_quaternions(500, seed=6)
    rotations = matrix_of(q)
    yaws = rng.uniform(-math.pi, math.pi, 100)
    level = matrix_of(axis_angle(np.tile([0.0, 1.0, 0.0], (100, 1)), yaws))
    rotations = np.concatenate([rotations, level])
    n = len(rotations)
    cframes = np.concatenate([rng.uniform(-50, 50, (n, 3)), rotations.reshape(n, 9)], axis=1)
    labels = camera_labels(cframes, np.full(n, 70.0), np.tile([1280.0, 720.0], (n, 1)),
                           np.ones((n, 2)), np.zeros((n, 2)))
    right, up, back = rotations[:, :, 0], rotations[:, :, 1], rotations[:, :, 2]
    ones = np.ones((n, 1))
    np.testing.assert_allclose(rotate(labels.quat_xyzw, [0, 0, 1.0] * ones), -back, atol=1e-12)
    np.testing.assert_allclose(rotate(labels.quat_xyzw, [1.0, 0, 0] * ones), right, atol=1e-12)
    np.testing.assert_allclose(rotate(labels.quat_xyzw, [0, 1.0, 0] * ones), -up, atol=1e-12)
    # and the extrinsics are the inverse: T_cam_world maps the camera's position to 0
    centre = np.einsum("nij,nj->ni", labels.t_cam_world[:, :3, :3], cframes[:, :3])
    np.testing.assert_allclose(centre + labels.t_cam_world[:, :3, 3], 0, atol=1e-9)


def test_cframe_matrix_is_cframe_times_vector():
    """`CFrame * Vector3` is position + x RightVector + y UpVector + z back vector."""
    q = _random_quaternions(50, seed=7)
    rot = matrix_of(q)
    cf = np.concatenate([np.arange(150.0).reshape(50, 3), rot.reshape(50, 9)], axis=1)
    local = np.array([1.5, -2.0, 0.25])
    expected = cf[:, :3] + rotate(q, np.tile(local, (50, 1)))
    np.testing.assert_allclose(camera.cframe_matrix(cf) @ [*local, 1.0],
                               np.column_stack([expected, np.ones(50)]), atol=1e-12)


# ---- distance and depth off the optical axis ------------------------------------------------

def test_distance_and_depth_of_off_axis_boxes_by_hand():
    k = camera.intrinsics(90.0, np.array([800.0, 600.0]))
    cams = np.array([[0.0, 0.0, 0.0, *IDENTITY], [5.0, 2.0, -3.0, *YAW_LEFT_90]])
    t = camera.extrinsics(cams)
    # box 1: 3 right, 4 up, 12 ahead of the identity camera -> depth 12, distance 13
    # box 2: d = (-10, 1, -2) from the yawed camera: 10 ahead, 2 right, 1 up
    b = boxes(np.array([[3.0, 4.0, -12.0, *IDENTITY], [-5.0, 3.0, -5.0, *IDENTITY]]),
              np.full((2, 3), 0.5), np.stack([k, k]), t, np.full((2, 2), [800.0, 600.0]))
    np.testing.assert_allclose(b.depth, [12.0, 10.0], atol=1e-12)
    np.testing.assert_allclose(b.distance, [13.0, math.sqrt(105.0)], atol=1e-12)
    np.testing.assert_allclose(b.centre_px, [[400 + 300 * 3 / 12, 300 - 300 * 4 / 12],
                                             [400 + 300 * 2 / 10, 300 - 300 * 1 / 10]],
                               atol=1e-9)


def test_labels_distance_and_depth_of_off_axis_objects(tmp_path):
    samples = [synthetic_sample(i, i / 30) for i in range(3)]
    for s in samples:
        s["camera"]["cframe"] = [5.0, 2.0, -3.0, *YAW_LEFT_90]
        s["character"]["root"]["cframe"] = [-7.0, 5.0, 1.0, *IDENTITY]  # d = (-12, 3, 4)
        s["entities"][0]["cframe"] = [-5.0, 3.0, -5.0, *IDENTITY]  # d = (-10, 1, -2)
    path = make_session(tmp_path, samples, [0, 1, 2], [0.0, 1 / 30, 2 / 30])
    row = compute_labels(Session.open(path)).table.to_pylist()[1]
    assert row["root_depth"] == pytest.approx(12.0) and row["root_distance"] == pytest.approx(
        13.0)
    crate = next(o for o in row["objects"] if o["id"] == "crate-1")
    assert crate["depth"] == pytest.approx(10.0)
    assert crate["distance"] == pytest.approx(math.sqrt(105.0))
