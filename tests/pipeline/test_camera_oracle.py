"""`pipeline.camera` against an independent oracle: the engine's own camera
(`pipeline.demo._engine`, written from the Roblox reference with basis vectors and frustum
extents, never a K matrix). The oracle is first pinned by hand-worked cases with off-centre,
off-axis, rotated and rolled cameras, then the two implementations must agree to 1e-9 px on
thousands of random cameras; the same check must catch deliberately wrong conventions."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from capture._synthetic import project as synthetic_project
from pipeline import camera
from pipeline.demo import build_sample
from pipeline.demo._engine import EngineCamera, box_corners
from pipeline.demo._world import FOV_Y, camera_cframe, initial_state, step

IDENTITY = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
YAW_LEFT_90 = [0.0, 0.0, 1.0, 0.0, 1.0, 0.0, -1.0, 0.0, 0.0]  # CFrame.Angles(0, pi/2, 0)
ROLL_90 = [0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]  # CFrame.Angles(0, 0, pi/2)


def _oracle(cframe, fov, viewport, points) -> np.ndarray:
    return EngineCamera.of(np.asarray(cframe, float), fov, viewport).world_to_viewport_point(
        np.asarray(points, float))


# ---- the oracle itself, against numbers worked by hand --------------------------------------

def test_identity_camera_by_hand():
    # FieldOfView 90: the frustum's half height at depth 10 is 10 studs = 300 px (600 / 2), and
    # the half width is 10 * 800 / 600 studs = 400 px; so 1 stud at depth 10 is 30 px.
    out = _oracle([0, 0, 0, *IDENTITY], 90.0, (800, 600),
                  [[0, 0, -10], [3, 0, -10], [0, 2, -10], [0, 0, 10], [20, 0, -10]])
    np.testing.assert_allclose(out[:3], [[400, 300, 10, 1], [490, 300, 10, 1],
                                         [400, 240, 10, 1]], atol=1e-12)
    assert np.isnan(out[3, :2]).all() and out[3, 2] == -10 and out[3, 3] == 0  # behind
    assert out[4, 0] == pytest.approx(1000) and out[4, 3] == 0  # in front, right of the edge


def test_off_centre_yawed_camera_by_hand():
    # Camera at (5, 2, -3) turned 90 degrees left: LookVector -X, RightVector -Z, UpVector +Y.
    # The point (-5, 3, -5) is d = (-10, 1, -2) from it: 10 ahead, 2 right, 1 up.
    out = _oracle([5, 2, -3, *YAW_LEFT_90], 90.0, (800, 600), [[-5, 3, -5]])
    np.testing.assert_allclose(out[0], [400 + 2 * 30, 300 - 1 * 30, 10, 1], atol=1e-12)


def test_rolled_camera_by_hand():
    # Rolled 90 degrees about its look axis: RightVector is world +Y, UpVector world -X.
    out = _oracle([0, 0, 0, *ROLL_90], 90.0, (800, 600), [[0, 2, -10], [1, 0, -10]])
    np.testing.assert_allclose(out[:, :2], [[460, 300], [400, 330]], atol=1e-12)


def test_narrow_wide_viewport_by_hand():
    # FieldOfView 60 on 1920 x 1080: half height 540 px spans tan(30 deg) at depth 1, so a
    # point 1 stud right and 1 stud down at depth 5 is 540 / (5 tan 30) px from the centre.
    px = 540 / (5 * math.tan(math.radians(30)))
    out = _oracle([10, 0, 0, *IDENTITY], 60.0, (1920, 1080), [[11, -1, -5]])
    np.testing.assert_allclose(out[0], [960 + px, 540 + px, 5, 1], atol=1e-9)


def test_viewport_rays_span_the_vertical_field_of_view():
    engine = EngineCamera.of(np.array([1.0, 2.0, 3.0, *YAW_LEFT_90]), 70.0, (1280, 720))
    _, centre = engine.viewport_point_to_ray(640, 360)
    np.testing.assert_allclose(centre, [-1, 0, 0], atol=1e-15)  # LookVector
    _, top = engine.viewport_point_to_ray(640, 0)
    _, bottom = engine.viewport_point_to_ray(640, 720)
    assert math.degrees(math.acos(top @ bottom)) == pytest.approx(70.0)  # vertical, not 70 wide
    _, left = engine.viewport_point_to_ray(0, 360)
    _, right = engine.viewport_point_to_ray(1280, 360)
    horizontal = 2 * math.degrees(math.atan(math.tan(math.radians(35)) * 1280 / 720))
    assert math.degrees(math.acos(left @ right)) == pytest.approx(horizontal)
    # a ray's point projects back to the pixel it came from
    origin, direction = engine.viewport_point_to_ray(100.25, 650.5, depth=3.0)
    back = engine.world_to_viewport_point((origin + 7.0 * direction)[None])[0]
    np.testing.assert_allclose(back[:2], [100.25, 650.5], atol=1e-9)


def test_box_corners_follow_the_cframe_axes_by_hand():
    corners = box_corners(np.array([1.0, 2.0, 3.0, *YAW_LEFT_90]), np.array([2.0, 4.0, 6.0]))
    # size.x lies along RightVector (world -Z), size.z along the back vector (world +X)
    np.testing.assert_allclose(corners.min(axis=0), [-2, 0, 2])
    np.testing.assert_allclose(corners.max(axis=0), [4, 4, 4])
    np.testing.assert_allclose(corners, camera.box_corners(
        np.array([1.0, 2.0, 3.0, *YAW_LEFT_90]), np.array([2.0, 4.0, 6.0])), atol=1e-12)


# ---- pipeline.camera against the oracle on random cameras -----------------------------------

def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniformly random proper rotations (n, 3, 3): QR of Gaussian matrices, signs fixed."""
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    return q


def _random_rig(seed: int, n: int, points: int, *, fov_min: float = 10.0,
                reach: float = 50.0, near: float = 1.0) -> dict:
    """n random cameras (pose within `reach` studs of the origin, FieldOfView from `fov_min`
    to 120, viewport, capture scale and offset), each with points scattered in and around
    its frustum, at depths from `near` to 1000 studs."""
    rng = np.random.default_rng(seed)
    rotation = _random_rotations(rng, n)
    position = rng.uniform(-reach, reach, (n, 3))
    fov = rng.uniform(fov_min, 120.0, n)
    viewport = np.column_stack([rng.integers(200, 4000, n), rng.integers(200, 3000, n)])
    scale = rng.uniform(0.5, 2.5, (n, 2))
    offset = rng.uniform(-50, 50, (n, 2))
    depth = np.exp(rng.uniform(math.log(near), math.log(1000), (n, points)))
    tan_y = np.tan(np.radians(fov) / 2)[:, None]
    tan_x = tan_y * (viewport[:, 0] / viewport[:, 1])[:, None]
    across = rng.uniform(-1.5, 1.5, (n, points, 2))  # 1.5: some points off screen
    view = np.stack([across[..., 0] * depth * tan_x, across[..., 1] * depth * tan_y, depth], -1)
    # world = position + x RightVector + y UpVector + depth LookVector (LookVector = -column z)
    axes = np.stack([rotation[:, :, 0], rotation[:, :, 1], -rotation[:, :, 2]], axis=1)
    world = position[:, None, :] + np.einsum("npk,nkj->npj", view, axes)
    cframe = np.concatenate([position, rotation.reshape(n, 9)], axis=1)
    return {"cframe": cframe, "fov": fov, "viewport": viewport.astype(float), "scale": scale,
            "offset": offset, "world": world}


def _oracle_pixels(rig: dict) -> tuple[np.ndarray, np.ndarray]:
    """The engine's viewport points mapped to captured pixels, and depths."""
    uv, depth = [], []
    for i in range(len(rig["cframe"])):
        out = _oracle(rig["cframe"][i], rig["fov"][i], tuple(rig["viewport"][i]),
                      rig["world"][i])
        uv.append(out[:, :2] * rig["scale"][i] + rig["offset"][i])
        depth.append(out[:, 2])
    return np.array(uv), np.array(depth)


def _pipeline_projection(rig: dict) -> tuple[np.ndarray, np.ndarray]:
    k = camera.intrinsics(rig["fov"], rig["viewport"], rig["scale"], rig["offset"])
    return camera.project(rig["world"], k, camera.extrinsics(rig["cframe"]))


def _half_pixel_off(rig: dict) -> tuple[np.ndarray, np.ndarray]:
    """Wrong: principal point at (W - 1) / 2 (pixel-index centre), not W / 2."""
    k = camera.intrinsics(rig["fov"], rig["viewport"], rig["scale"], rig["offset"])
    k[..., :2, 2] -= 0.5 * rig["scale"]
    return camera.project(rig["world"], k, camera.extrinsics(rig["cframe"]))


def _fov_horizontal(rig: dict) -> tuple[np.ndarray, np.ndarray]:
    """Wrong: FieldOfView read as horizontal (focal length from the viewport width)."""
    k = camera.intrinsics(rig["fov"], rig["viewport"], rig["scale"], rig["offset"])
    f = (rig["viewport"][:, 0] / 2) / np.tan(np.radians(rig["fov"]) / 2)
    k[:, 0, 0], k[:, 1, 1] = f * rig["scale"][:, 0], f * rig["scale"][:, 1]
    return camera.project(rig["world"], k, camera.extrinsics(rig["cframe"]))


def _y_up(rig: dict) -> tuple[np.ndarray, np.ndarray]:
    """Wrong: image y grows upwards (a Roblox-to-OpenCV flip missing on y)."""
    t = camera.extrinsics(rig["cframe"])
    t[:, 1, :] *= -1
    k = camera.intrinsics(rig["fov"], rig["viewport"], rig["scale"], rig["offset"])
    return camera.project(rig["world"], k, t)


def _disagreement(projection: Callable[[dict], tuple[np.ndarray, np.ndarray]],
                  seed: int = 17, n: int = 1500, **rig: float) -> tuple[float, float]:
    """Largest pixel and depth difference between `projection` and the oracle."""
    rig = _random_rig(seed, n, points=4, **rig)
    uv, depth = projection(rig)
    ref_uv, ref_depth = _oracle_pixels(rig)
    assert np.isfinite(ref_uv).all() and (ref_depth > 0).all()
    return float(np.abs(uv - ref_uv).max()), float(np.abs(depth - ref_depth).max())


def test_pipeline_camera_agrees_with_the_oracle_to_1e9_px():
    px, depth = _disagreement(_pipeline_projection)  # 1500 cameras x 4 points
    assert px < 1e-9 and depth < 1e-9, (px, depth)


def test_pipeline_camera_agrees_with_the_oracle_over_the_whole_fov_range():
    """FieldOfView down to 1 degree (f up to 1e5 px), 500 studs from the origin, depth 0.2:
    the world
    coordinates themselves carry ~1e-13 studs of rounding, which the zoom turns into
    ~1e-8 px; both implementations stay within that input precision."""
    px, depth = _disagreement(_pipeline_projection, seed=18, fov_min=1.0, reach=500.0,
                              near=0.2)
    assert px < 1e-7 and depth < 1e-9, (px, depth)


@pytest.mark.parametrize(("wrong", "at_least"), [
    (_half_pixel_off, 0.25),  # half a viewport pixel times a scale of at least 0.5
    (_fov_horizontal, 10.0),
    (_y_up, 10.0),
])
def test_the_oracle_catches_a_wrong_convention(wrong, at_least):
    px, _ = _disagreement(wrong)
    assert px >= at_least, px  # the same check that passes the real model at 1e-9 px


def test_the_synthetic_capture_and_demo_engine_agree_with_the_oracle():
    cf = [3.0, 7.0, 12.0, *YAW_LEFT_90]
    for point in ([-4.0, 6.5, 11.0], [-9.0, 2.0, 15.0]):
        ours = _oracle(cf, 70.0, (1280, 720), [point])[0]
        theirs = synthetic_project(cf, tuple(point), 70.0, (1280, 720))
        np.testing.assert_allclose(theirs, ours, atol=1e-9)
    state = initial_state()
    for _ in range(200):
        state = step(state)
    sample = build_sample(state, seq=5, client_t=1.0, dt=1 / 60, wall_ms=0,
                          viewport=(1280, 720))
    k = camera.intrinsics(FOV_Y, np.array([1280.0, 720.0]))
    uv, depth = camera.project(np.array([state.position]), k,
                               camera.extrinsics(camera_cframe(state)))
    root = sample["camera"]["root_projection"]
    np.testing.assert_allclose(root[:3], [*uv[0], depth[0]], atol=1e-9)
