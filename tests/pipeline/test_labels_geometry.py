"""Camera, projection and box labels against hand-worked values and an independent
pinhole implementation (capture._synthetic.project, plain Python)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capture import Session
from capture._synthetic import FOV_Y, VIEWPORT, synthetic_sample
from capture._synthetic import project as reference_project
from pipeline.camera import extrinsics, intrinsics, look_at
from pipeline.labels import compute_labels
from pipeline.labels._geometry import boxes
from tests.pipeline.session_kit import make_session

IDENTITY = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]


def _labels(tmp_path, samples, frames=None, **kw):
    frames = frames if frames is not None else list(range(len(samples)))
    path = make_session(tmp_path, samples, frames, [i / 30 for i in range(len(frames))], **kw)
    return compute_labels(Session.open(path))


@pytest.mark.parametrize(("scale", "offset", "size"), [
    ((1.0, 1.0), (0.0, 0.0), (1280, 720)),
    ((1.25, 1.25), (8.0, 31.0), (1608, 931)),
])
def test_root_pixel_matches_the_engine_projection(tmp_path, scale, offset, size):
    samples = [synthetic_sample(i, i / 30) for i in range(120)]
    labels = _labels(tmp_path, samples, scale=scale, offset=offset, size=size)
    error = labels.table["root_px_error"].to_numpy()
    assert error.max() < 0.5 and labels.summary["root_px_error"]["max"] < 0.5
    px = np.array(labels.table["root_px"].to_pylist())
    for i in (0, 57, 119):  # independent reference: the hand-written pinhole, then scale
        s = samples[i]
        ref = reference_project(s["camera"]["cframe"], s["character"]["root"]["cframe"][:3],
                                FOV_Y, VIEWPORT)
        np.testing.assert_allclose(px[i], np.array(ref[:2]) * scale + offset, atol=1e-6)


def test_engine_disagreement_is_reported(tmp_path):
    samples = [synthetic_sample(i, i / 30) for i in range(10)]
    samples[4]["camera"]["root_projection"][0] += 3.0  # the engine says 3 px further right
    labels = _labels(tmp_path, samples)
    error = labels.table["root_px_error"].to_numpy()
    assert error[4] == pytest.approx(3.0) and error[3] < 1e-6
    assert labels.summary["root_px_error"]["max"] == pytest.approx(3.0)


def test_camera_columns_golden_values(tmp_path):
    samples = [synthetic_sample(i, i / 30) for i in range(3)]
    cam = look_at([0.0, 0.0, 0.0], [0.0, 0.0, -10.0])  # Roblox identity camera
    for s in samples:
        s["camera"]["cframe"] = cam.tolist()
        s["camera"]["fov_y"] = 90.0
    labels = _labels(tmp_path, samples).table.to_pylist()[0]
    # f = (720 / 2) / tan(45 deg) = 360, principal point at the centre
    np.testing.assert_allclose(labels["K"], [360, 0, 640, 0, 360, 360, 0, 0, 1], atol=1e-9)
    np.testing.assert_allclose(np.reshape(labels["T_cam_world"], (4, 4)),
                               np.diag([1.0, -1.0, -1.0, 1.0]), atol=1e-12)
    # camera-to-world rotation diag(1, -1, -1) is 180 degrees about x: q = (1, 0, 0, 0)
    np.testing.assert_allclose(np.abs(labels["cam_quat_xyzw"]), [1, 0, 0, 0], atol=1e-12)


def test_aspect_mismatch_is_reported_not_squashed(tmp_path, caplog):
    samples = [synthetic_sample(i, i / 30) for i in range(4)]
    for s in samples:
        s["camera"]["viewport"] = [1528.0, 856.0]
    # the seed's case: 1080x1920 frames for a 1528x856 viewport
    labels = _labels(tmp_path, samples, size=(1080, 1920), scale=(1080 / 1528, 1920 / 856))
    k = np.reshape(labels.table["K"][0].as_py(), (3, 3))
    f = 428 / math.tan(math.radians(35))
    assert k[0, 0] == pytest.approx(f * 1080 / 1528) and k[1, 1] == pytest.approx(f * 1920 / 856)
    assert labels.summary["capture_aspect_mismatch"] > 2.0
    assert "aspect" in caplog.text


def test_box_in_front_is_the_hand_projected_square():
    k = intrinsics(90.0, np.array([800.0, 600.0]))[None]
    t = extrinsics(np.array([0.0, 0.0, 0.0, *IDENTITY]))[None]
    b = boxes(np.array([[0.0, 0.0, -10.0, *IDENTITY]]), np.array([[2.0, 2.0, 2.0]]), k, t,
              np.array([[800.0, 600.0]]))
    # f = 300; nearest face at depth 9 spans +-1 stud -> +-300/9 px around (400, 300)
    d = 300 / 9
    np.testing.assert_allclose(b.box_xyxy[0], [400 - d, 300 - d, 400 + d, 300 + d])
    assert b.truncation[0] == 0 and b.on_screen[0] and not b.behind_camera[0]
    assert b.depth[0] == pytest.approx(10.0) and b.distance[0] == pytest.approx(10.0)


def test_box_reaching_behind_the_camera_is_clipped_at_the_near_plane():
    k = intrinsics(90.0, np.array([800.0, 600.0]))[None]
    t = extrinsics(np.array([0.0, 0.0, 0.0, *IDENTITY]))[None]
    # a long box from z = +5 (behind) to z = -5 (in front), 1 stud to the right
    b = boxes(np.array([[1.5, 0.0, 0.0, *IDENTITY]]), np.array([[1.0, 1.0, 10.0]]), k, t,
              np.array([[800.0, 600.0]]))
    # near corners at depth 0.1: x = 1 .. 2 -> u = 400 + 300 * 10 .. 20 (far off the right);
    # the far face at depth 5 starts at u = 400 + 300 * 1 / 5 = 460: left edge at 460
    assert b.on_screen[0] and not b.behind_camera[0]
    assert b.box_xyxy[0, 0] == pytest.approx(460.0) and b.box_xyxy[0, 2] == 800.0
    assert 0.9 < b.truncation[0] < 1.0
    behind = boxes(np.array([[0.0, 0.0, 10.0, *IDENTITY]]), np.array([[2.0, 2.0, 2.0]]), k, t,
                   np.array([[800.0, 600.0]]))
    assert behind.behind_camera[0] and not behind.on_screen[0]
    assert np.isnan(behind.box_xyxy[0]).all() and behind.depth[0] == pytest.approx(-10.0)


def test_half_visible_box_has_half_truncation():
    k = intrinsics(90.0, np.array([800.0, 600.0]))[None]
    t = extrinsics(np.array([0.0, 0.0, 0.0, *IDENTITY]))[None]
    # a flat box at depth 10 centred on the left image edge: u = 400 - 300 * 13.333 / 10 = 0
    x = -400 / 30
    b = boxes(np.array([[x, 0.0, -10.0, *IDENTITY]]), np.array([[2.0, 2.0, 1e-9]]), k, t,
              np.array([[800.0, 600.0]]))
    assert b.truncation[0] == pytest.approx(0.5, abs=1e-6)
    assert b.box_xyxy[0, 0] == 0.0


def test_camera_motion_split_sums_to_image_motion(tmp_path):
    samples = [synthetic_sample(i, i / 30) for i in range(40)]
    table = _labels(tmp_path, samples).table
    objects = table["objects"].to_pylist()
    crate = [next(o for o in frame if o["id"] == "crate-1") for frame in objects]
    for o in crate[1:]:
        if o["on_screen"]:
            np.testing.assert_allclose(o["object_caused_motion"], [0, 0], atol=1e-6)
            np.testing.assert_allclose(o["camera_caused_motion"], o["image_motion"], atol=1e-6)
    char = [frame[0] for frame in objects]
    assert char[0]["kind"] == "character" and np.isnan(char[0]["image_motion"]).all()
    total = np.add(char[5]["camera_caused_motion"], char[5]["object_caused_motion"])
    np.testing.assert_allclose(total, char[5]["image_motion"], atol=1e-6)
    # the camera velocity is the finite difference of its position over real t
    pos = np.array(table["cam_position"].to_pylist())
    vel = np.array(table["cam_velocity"].to_pylist())
    np.testing.assert_allclose(vel[7], (pos[7] - pos[6]) * 30, rtol=1e-9)


def test_camera_angular_velocity_of_a_steady_pan(tmp_path):
    samples = [synthetic_sample(i, i / 30) for i in range(10)]
    rate = math.radians(30)  # 30 deg/s to the left
    for i, s in enumerate(samples):
        a = rate * i / 30
        s["camera"]["cframe"] = look_at([0, 5, 0], [-math.sin(a), 5, -math.cos(a)]).tolist()
    table = _labels(tmp_path, samples).table
    w = np.array(table["cam_angular_velocity"].to_pylist())
    # turning left about world +Y is about the OpenCV camera's -y axis (y points down)
    np.testing.assert_allclose(w[3], [0, -rate, 0], atol=1e-9)
    assert "camera turns left at 30 deg/s" in table["caption"][3].as_py()


def _identity_boxes(centres, sizes, rotation=IDENTITY):
    """Boxes seen by an identity camera at the origin, FOV 90 on 800 x 600 (f = 300 px)."""
    n = len(centres)
    k = np.tile(intrinsics(90.0, np.array([800.0, 600.0])), (n, 1, 1))
    t = np.tile(extrinsics(np.array([0.0, 0.0, 0.0, *IDENTITY])), (n, 1, 1))
    cframes = np.array([[*c, *rotation] for c in centres], float)
    return boxes(cframes, np.array(sizes, float), k, t, np.tile([800.0, 600.0], (n, 1)))


HALF_TURN_Y = [-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0]


@pytest.mark.parametrize("rotation", [IDENTITY, HALF_TURN_Y])  # near corners first or last
def test_box_edges_at_and_before_the_near_plane_by_hand(rotation):
    # near face exactly on the near plane (depth 0.1): its corners count, +-0.001 stud wide
    # -> +-3 px; the far face at depth 5.1 is +-0.06 px
    on_plane = _identity_boxes([[0.0, 0.0, -2.6]], [[0.002, 0.002, 5.0]], rotation)
    np.testing.assert_allclose(on_plane.box_xyxy[0], [397, 297, 403, 303], atol=1e-9)
    # a box from depth 0.05 (before the near plane, in front of the camera) to depth 5.05:
    # clipped where its edges cross depth 0.1: x = 0.002 .. 0.004 there -> u = 406 .. 412
    before = _identity_boxes([[0.003, 0.0, -2.55]], [[0.002, 0.002, 5.0]], rotation)
    assert before.box_xyxy[0, 2] == pytest.approx(412.0)
    assert before.box_xyxy[0, 3] == pytest.approx(303.0)


def test_boxes_barely_on_screen_tiny_or_off_screen():
    # right edge 0.5 px into the frame, 60 px tall: 0.5 px of a 60 px wide box visible
    edge = 0.5 / 30 - 400 / 30  # u = 400 + 30 x at depth 10
    b = _identity_boxes([[edge - 1.0, 0.0, -10.0], [0.0, 0.0, -10.0], [40.0, 0.0, -10.0]],
                        [[2.0, 2.0, 1e-9], [0.01, 0.01, 0.01], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(b.box_xyxy[0], [0.0, 270.0, 0.5, 330.0], atol=1e-9)
    assert b.on_screen[0] and b.truncation[0] == pytest.approx(1 - 0.5 / 60)
    assert b.on_screen[1] and (b.box_xyxy[1, 2:] - b.box_xyxy[1, :2] < 0.4).all()  # 0.3 px
    assert b.truncation[1] == 0.0  # whole, though under one square pixel
    assert not b.on_screen[2] and not b.behind_camera[2]  # in front, far to the right
    assert np.isnan(b.box_xyxy[2]).all() and b.truncation[2] == 1.0


def test_objects_column_holds_the_character_box_then_the_entities_by_hand(tmp_path):
    # identity camera at the origin looking down -Z, 90 deg: f = 360, centre (640, 360).
    # The character's bounding box (4 x 6 x 2 studs) is centred 10 studs ahead: its near face
    # (depth 9) spans x +-2, y +-3 -> u 640 -+ 80, v 360 -+ 120. A 2-stud crate centred at
    # x = 5: u from 640 + 360 * 4 / 11 (far face) to 640 + 360 * 6 / 9, v 360 -+ 40.
    samples = [synthetic_sample(i, i / 30) for i in range(2)]
    for s in samples:
        s["camera"]["cframe"] = [0.0, 0.0, 0.0, *IDENTITY]
        s["camera"]["fov_y"] = 90.0
        s["character"]["bbox"] = {"cframe": [0.0, 0.0, -10.0, *IDENTITY], "size": [4.0, 6.0, 2.0]}
        s["entities"] = [{"id": "crate", "name": "Crate", "tag": "STPE_Track",
                          "cframe": [5.0, 0.0, -10.0, *IDENTITY], "size": [2.0, 2.0, 2.0],
                          "velocity": [0.0, 0.0, 0.0], "projection": [0.0, 0.0, 10.0, 1.0]}]
    del samples[1]["character"]
    objects = _labels(tmp_path, samples).table["objects"].to_pylist()
    character, crate = objects[0]
    assert (character["id"], character["name"], character["kind"]) == ("character",) * 3
    np.testing.assert_allclose(character["box_xyxy"], [560, 240, 720, 480], atol=1e-9)
    assert character["distance"] == pytest.approx(10.0) and character["depth"] == pytest.approx(10)
    assert (character["on_screen"], character["behind_camera"]) == (True, False)
    assert character["truncation"] == 0.0
    assert (crate["id"], crate["name"], crate["kind"]) == ("crate", "Crate", "entity")
    np.testing.assert_allclose(crate["box_xyxy"], [640 + 1440 / 11, 320, 880, 400], atol=1e-9)
    assert crate["distance"] == pytest.approx(125 ** 0.5) and crate["depth"] == pytest.approx(10)
    # without a character, only the crate
    assert [o["id"] for o in objects[1]] == ["crate"]
