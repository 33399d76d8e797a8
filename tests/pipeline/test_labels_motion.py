"""Camera velocity, angular velocity and image motion against values worked by hand."""

from __future__ import annotations

import math

import numpy as np

from pipeline.labels._motion import (
    camera_angular_velocity,
    camera_velocity,
    motion_split,
    rotation_log,
)


def test_backward_differences_at_the_edges():
    t = np.array([0.0, 0.5, 1.5, 2.0])
    x = np.array([[0.0], [1.0], [4.0], [4.0]])
    np.testing.assert_allclose(camera_velocity(x, t), [[2.0], [2.0], [3.0], [0.0]])
    assert np.isnan(camera_velocity(x[:1], t[:1])).all()  # one frame: no velocity
    assert np.isnan(camera_angular_velocity(np.eye(4)[None], t[:1])).all()


def test_still_camera_has_zero_angular_velocity_despite_rounding():
    """R_{N-1} R_N^T of one rotation has a trace a hair above 3 for some rotations: the
    angle must be 0, not NaN."""
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(200, 3, 3)))[0]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    traces = np.trace(q @ np.swapaxes(q, -1, -2), axis1=-2, axis2=-1)
    assert (traces > 3.0).any()  # the case exists in this sample
    still = np.zeros((200, 2, 4, 4))
    still[:, :, :3, :3] = q[:, None]
    for pair in still:
        w = camera_angular_velocity(pair, np.array([0.0, 1 / 60]))
        np.testing.assert_allclose(w[1], 0.0, atol=1e-6)
    quarter = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # +90 degrees about x
    np.testing.assert_allclose(rotation_log(quarter), [math.pi / 2, 0, 0], atol=1e-12)


def test_two_frames_have_a_velocity():
    t = np.array([0.0, 0.25])
    np.testing.assert_allclose(camera_velocity(np.array([[0.0], [1.0]]), t), [[4.0], [4.0]])


def test_rolling_camera_angular_velocity_is_about_its_forward_axis():
    """A roll about the camera's own z (forward): w = (0, 0, rate), sign by hand: the new
    camera-to-world rotation is R exp([w] dt), a right-handed turn about +z."""
    rate, dt = 0.9, 1 / 30
    c, s = math.cos(rate * dt), math.sin(rate * dt)
    r_world_cam = [np.eye(3), np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])]
    t_cam_world = np.zeros((2, 4, 4))
    for i, r in enumerate(r_world_cam):
        t_cam_world[i, :3, :3] = r.T
        t_cam_world[i, 3, 3] = 1.0
    w = camera_angular_velocity(t_cam_world, np.array([0.0, dt]))
    np.testing.assert_allclose(w[1], [0.0, 0.0, rate], atol=1e-9)


def test_image_motion_in_pixels_per_second_by_hand():
    """One point 10 studs ahead of an identity camera (f = 300 px) moving 1 stud right per
    frame at 20 frames/s: 30 px a frame = 600 px/s, all caused by the object; the first
    row of the table (row 0) counts as a previous row."""
    k = np.tile(np.array([[300.0, 0, 400], [0, 300.0, 300], [0, 0, 1]]), (3, 1, 1))
    t_cam_world = np.tile(np.diag([1.0, -1.0, -1.0, 1.0]), (3, 1, 1))
    frame = np.array([0, 1, 2])
    centre = np.array([[0.0, 0, -10], [1.0, 0, -10], [2.0, 0, -10]])
    image, by_camera, by_object = motion_split(frame, np.array(["a"] * 3), centre, k,
                                               t_cam_world, np.array([10.0, 10.05, 10.1]))
    assert np.isnan(image[0]).all()
    np.testing.assert_allclose(image[1:], [[600.0, 0.0]] * 2, atol=1e-9)
    np.testing.assert_allclose(by_object[1:], image[1:], atol=1e-9)
    np.testing.assert_allclose(by_camera[1:], 0.0, atol=1e-9)
