"""Golden values for the camera model, worked by hand from the conventions."""

import math

import numpy as np
import pytest

from pipeline.camera import (
    box_corners,
    cframe_matrix,
    cframe_rotation,
    extrinsics,
    intrinsics,
    look_at,
    project,
    quat_xyzw,
)

IDENTITY = [0.0, 0.0, 0.0, 1, 0, 0, 0, 1, 0, 0, 0, 1]


def test_intrinsics_from_vertical_fov():
    k = intrinsics(90.0, [1280.0, 720.0])
    # tan(45 deg) = 1 -> f = 360
    np.testing.assert_allclose(k, [[360, 0, 640], [0, 360, 360], [0, 0, 1]], atol=1e-9)


def test_intrinsics_scaled_to_capture_with_offset():
    k = intrinsics(90.0, [1528.0, 856.0], scale=(1.25, 1.25), offset=(8.0, 31.0))
    np.testing.assert_allclose(k[0], [428 * 1.25, 0, 764 * 1.25 + 8])
    np.testing.assert_allclose(k[1], [0, 428 * 1.25, 428 * 1.25 + 31])


def test_opencv_convention_front_is_positive_z_and_up_is_up():
    k = intrinsics(70.0, [800.0, 600.0])
    t = extrinsics(np.array(IDENTITY))  # Roblox camera at origin looking down -Z
    uv, depth = project(np.array([[0.0, 0.0, -10.0], [0.0, 1.0, -10.0], [1.0, 0.0, -10.0]]),
                        k, t)
    assert depth.tolist() == [10.0, 10.0, 10.0]
    np.testing.assert_allclose(uv[0], [400, 300])
    f = 300 / math.tan(math.radians(35))
    np.testing.assert_allclose(uv[1], [400, 300 - f / 10])  # world up -> image up (smaller v)
    np.testing.assert_allclose(uv[2], [400 + f / 10, 300])  # world right -> image right


def test_points_behind_the_camera_have_no_pixel():
    k = intrinsics(70.0, [800.0, 600.0])
    uv, depth = project(np.array([[0.0, 0.0, 5.0]]), k, extrinsics(np.array(IDENTITY)))
    assert depth[0] == -5.0 and np.isnan(uv).all()


def test_look_at_camera_projects_its_target_to_the_centre():
    cam = look_at([10.0, 8.0, 10.0], [0.0, 2.0, 0.0])
    k = intrinsics(70.0, [1280.0, 720.0])
    uv, depth = project(np.array([[0.0, 2.0, 0.0]]), k, extrinsics(cam))
    np.testing.assert_allclose(uv[0], [640, 360], atol=1e-9)
    assert depth[0] == pytest.approx(math.sqrt(10**2 + 6**2 + 10**2))
    r = cframe_rotation(cam)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)


def test_vectorised_over_frames():
    cams = np.stack([look_at([0, 0, 10.0 + i], [0, 0, 0]) for i in range(4)])
    t = extrinsics(cams)
    k = intrinsics(np.full(4, 70.0), np.tile([800.0, 600.0], (4, 1)))
    uv, depth = project(np.zeros((4, 1, 3)), k, t)
    assert uv.shape == (4, 1, 2)
    np.testing.assert_allclose(depth[:, 0], [10, 11, 12, 13])


def test_box_corners_and_quaternion():
    corners = box_corners(np.array([1.0, 2.0, 3.0, 1, 0, 0, 0, 1, 0, 0, 0, 1]),
                          np.array([2.0, 4.0, 6.0]))
    np.testing.assert_allclose(corners.min(axis=0), [0, 0, 0])
    np.testing.assert_allclose(corners.max(axis=0), [2, 4, 6])
    np.testing.assert_allclose(quat_xyzw(np.eye(3)), [0, 0, 0, 1])
    half = math.sqrt(0.5)  # 90 degrees about +Y
    rot_y = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])
    np.testing.assert_allclose(quat_xyzw(rot_y), [0, half, 0, half])


def test_integer_inputs_and_a_single_cframe():
    cam = look_at([0, 0, 10], [0, 0, 0])  # plain integers, as a user types them
    np.testing.assert_allclose(cam, [0, 0, 10, *IDENTITY[3:]], atol=1e-15)
    single = cframe_matrix(np.array([1, 2, 3, 0, 0, 1, 0, 1, 0, -1, 0, 0]))
    assert single.shape == (4, 4)  # one CFrame, one matrix
    np.testing.assert_allclose(single @ [1.0, 0, 0, 1], [1, 2, 2, 1])  # + RightVector (0,0,-1)


def test_per_frame_capture_scale_or_offset_gives_per_frame_intrinsics():
    scale = np.array([[1.0, 1.0], [2.0, 2.0], [0.5, 0.5]])
    k = intrinsics(90.0, [1280.0, 720.0], scale=scale)
    assert k.shape == (3, 3, 3)
    np.testing.assert_allclose(k[:, 0, 0], [360, 720, 180])
    np.testing.assert_allclose(k[:, 0, 2], [640, 1280, 320])
    k = intrinsics(90.0, [1280.0, 720.0], offset=np.array([[0.0, 0.0], [8.0, 31.0]]))
    assert k.shape == (2, 3, 3)
    np.testing.assert_allclose(k[1, :2, 2], [648, 391])


def test_a_point_in_the_camera_plane_has_no_pixel():
    k = intrinsics(70.0, [800.0, 600.0])
    uv, depth = project(np.array([[3.0, 1.0, 0.0]]), k, extrinsics(np.array(IDENTITY)))
    assert depth[0] == 0.0 and np.isnan(uv).all()  # not an infinite pixel
