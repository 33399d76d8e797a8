"""Camera velocity, angular velocity and image motion against values worked by hand."""

from __future__ import annotations

import math

import numpy as np

from pipeline.labels._motion import (
    camera_angular_velocity,
    camera_velocity,
    motion_split,
    move_direction,
    rotation_log,
    yaw,
)

# Roblox CFrame components: x, y, z, then R00 R01 R02 R10 R11 R12 R20 R21 R22 (row-major);
# RightVector is column 0 and LookVector is minus column 2 (CFrame reference page).
LOOK_MINUS_Z = [0.0, 0.0, 0.0, 1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]  # identity: right +X
LOOK_PLUS_X = [0.0, 0.0, 0.0, 0, 0, -1.0, 0, 1.0, 0, 1.0, 0, 0]  # right +Z, back -X
LOOK_MINUS_X = [0.0, 0.0, 0.0, 0, 0, 1.0, 0, 1.0, 0, -1.0, 0, 0]  # right -Z, back +X


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


def _directions(velocity, intent=None, cframe=LOOK_MINUS_Z, threshold=None):
    velocity = np.array(velocity, float)
    intent = np.zeros_like(velocity) if intent is None else np.array(intent, float)
    cframes = np.tile(np.array(cframe, float), (len(velocity), 1))
    kw = {} if threshold is None else {"threshold": threshold}
    return move_direction(velocity, intent, cframes, **kw).tolist()


def test_move_direction_sectors_by_hand():
    """Eight 45-degree sectors centred on forward, clockwise seen from above; the boundary
    between two lies at 22.5 + 45 k degrees, so 0.2 degrees either side of it flips the
    name. Angles are measured from the camera's look vector toward its right vector."""
    names = ["forward", "forward-right", "right", "back-right", "back", "back-left", "left",
             "forward-left"]
    cases, expected = [], []
    for k in range(8):
        for side, delta in ((0, -0.2), (1, 0.2)):
            angle = math.radians(22.5 + 45 * k + delta)
            # identity camera: forward is -Z, right is +X; 10 studs/s
            cases.append([10 * math.sin(angle), 0.0, -10 * math.cos(angle)])
            expected.append(names[(k + side) % 8])
    assert _directions(cases) == expected
    # the same world motion seen by cameras turned to look down +X and -X
    assert _directions([[10.0, 0, 0], [0, 0, 10.0], [0, 0, -10.0]], cframe=LOOK_PLUS_X) == [
        "forward", "right", "left"]
    assert _directions([[10.0, 0, 0], [0, 0, 10.0], [0, 0, -10.0]], cframe=LOOK_MINUS_X) == [
        "back", "left", "right"]
    # a camera pitched 60 degrees down still reads forward along its flattened look vector
    c, s = math.cos(math.radians(-60)), math.sin(math.radians(-60))
    pitched = [0.0, 0, 0, 1.0, 0, 0, 0, c, -s, 0, s, c]  # rotation about +X
    assert _directions([[0, 0, -3.0], [3.0, 0, 0]], cframe=pitched) == ["forward", "right"]


def test_move_direction_speed_threshold_counts_only_ground_speed():
    """Moving means a horizontal root speed of at least the threshold (0.5 studs/s): the
    vertical speed of a fall does not count."""
    got = _directions([[0.5, 0, 0], [0.49, 0, 0], [0.0, 0, -0.5], [0.3, -50.0, 0.3],
                       [0.3, 0, 0.4], [np.nan] * 3])
    assert got == ["right", "none", "forward", "none", "back-right", "none"]
    assert _directions([[2.0, 0, 0], [1.0, 0, 0]], threshold=1.5) == ["right", "none"]


def test_move_direction_prefers_intent_over_velocity():
    """MoveDirection (horizontal length over 0.1) decides the direction; the root velocity
    decides whether the character moves at all."""
    velocity = [[0, 0, -10.0]] * 5 + [[0.0, 0, 0]]
    intent = [[1.0, 0, 0],  # asks for right while sliding forward: right
              [0.11, 0, 0],  # just over 0.1: still the intent
              [0.1, 0, 0],  # exactly 0.1 is not set: the velocity
              [0, 1.0, 0],  # vertical only: not set
              [0.08, 0, 0.08],  # 0.113 long in the ground plane: set, back-right
              [1.0, 0, 0]]  # asks to move, but the root stands still: none
    assert _directions(velocity, intent) == ["right", "right", "forward", "forward",
                                             "back-right", "none"]


def test_yaw_is_unwrapped_across_frames_without_state():
    """Heading 0 looking down -Z, +90 degrees looking down -X (turned left); a turn through
    the back (170 to -170 degrees) continues to 190 degrees, also across a frame without
    state, which stays NaN."""
    def looking(angle):
        look = [-math.sin(angle), 0.0, -math.cos(angle)]  # turned left by `angle`
        right = [-look[2], 0.0, look[0]]  # look x up
        return [0.0, 0, 0, right[0], 0, -look[0], 0, 1.0, 0, right[2], 0, -look[2]]

    assert yaw(np.array([LOOK_MINUS_Z, LOOK_MINUS_X])).tolist() == [0.0, math.pi / 2]
    assert yaw(np.array([LOOK_PLUS_X])).tolist() == [-math.pi / 2]
    frames = np.array([looking(math.radians(170)), [np.nan] * 12,
                       looking(math.radians(-170)), looking(math.radians(-150))])
    got = np.degrees(yaw(frames))
    assert np.isnan(got[1])
    np.testing.assert_allclose(got[[0, 2, 3]], [170.0, 190.0, 210.0], atol=1e-9)
