"""The demo renderer draws through the engine's own camera; checked on pixels against the
labels' camera model (`pipeline.camera`), a second implementation."""

from __future__ import annotations

import numpy as np
import pytest

from alignment._timecode_code import COLUMNS, DEFAULT_CELL, cells_to_payload
from pipeline import camera as cam
from pipeline.demo._raster import (
    NEAR,
    ROOT_MARKER,
    SKY,
    Box,
    View,
    clip_near,
    draw_scene,
    marker_centroid,
)
from pipeline.demo._scene import render_state
from pipeline.demo._world import FOV_Y, TICK_HZ, camera_cframe, initial_state, step

VIEWPORT = (640, 360)


def _state_at(seconds: float):
    state = initial_state()
    for _ in range(round(seconds * TICK_HZ)):
        state = step(state)
    return state


@pytest.mark.parametrize("seconds", [0.5, 3.0, 4.55, 8.0])
def test_root_marker_is_drawn_where_the_camera_model_projects_it(seconds):
    state = _state_at(seconds)
    frame = render_state(state, 7, VIEWPORT)
    k = cam.intrinsics(FOV_Y, np.array(VIEWPORT, float))
    t = cam.extrinsics(camera_cframe(state))
    uv, _ = cam.project(np.array([state.position]), k, t)
    assert frame.root_px == pytest.approx(tuple(uv[0]), abs=1e-9)
    assert marker_centroid(frame.image) == pytest.approx(tuple(uv[0]), abs=0.2)
    assert tuple(frame.image[int(uv[0][1]), int(uv[0][0])]) == ROOT_MARKER


def test_a_box_silhouette_spans_its_projected_corners():
    camera_cf = cam.look_at([3.0, 6.0, 14.0], [0.0, 1.0, 0.0])
    view = View.of(camera_cf, FOV_Y, VIEWPORT)
    rotation = [0.8, 0.0, 0.6, 0.0, 1.0, 0.0, -0.6, 0.0, 0.8]
    box = Box((0.5, 1.0, -1.0, *rotation), (4.0, 3.0, 5.0), (20, 30, 200))
    image = draw_scene(view, [box], ground=False)
    mask = image[..., 0] < (SKY[0] + 20) / 2  # more than half covered by the box (blue 20)
    ys, xs = np.nonzero(mask)
    corners = cam.box_corners(np.array(box.cframe), np.array(box.size))
    k = cam.intrinsics(FOV_Y, np.array(VIEWPORT, float))
    uv, depth = cam.project(corners, k, cam.extrinsics(camera_cf))
    assert (depth > 0).all()
    # the silhouette is the hull of the projected corners: its extremes are corners
    assert xs.min() + 0.5 == pytest.approx(uv[:, 0].min(), abs=1.0)
    assert xs.max() + 0.5 == pytest.approx(uv[:, 0].max(), abs=1.0)
    assert ys.min() + 0.5 == pytest.approx(uv[:, 1].min(), abs=1.0)
    assert ys.max() + 0.5 == pytest.approx(uv[:, 1].max(), abs=1.0)
    top = np.argmin(uv[:, 1])  # the topmost corner is a drawn vertex
    u, v = uv[top]
    assert mask[int(v) + 1, int(u)]


def test_painter_draws_the_near_box_over_the_far_one():
    camera_cf = cam.look_at([0.0, 2.0, 10.0], [0.0, 2.0, 0.0])
    view = View.of(camera_cf, FOV_Y, VIEWPORT)
    identity = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    near = Box((0.0, 2.0, 4.0, *identity), (1.0, 1.0, 1.0), (0, 0, 250))
    far = Box((0.0, 2.0, -4.0, *identity), (6.0, 6.0, 1.0), (0, 250, 0))
    for order in ([near, far], [far, near]):
        image = draw_scene(view, order, ground=False)
        centre = image[VIEWPORT[1] // 2, VIEWPORT[0] // 2]
        assert centre[2] > 100 and centre[1] < 50  # red-ish near box, not the green far one


def test_near_plane_clipping_keeps_what_is_in_front():
    quad = np.array([[-1.0, 0.0, -2.0], [1.0, 0.0, -2.0], [1.0, 0.0, 4.0], [-1.0, 0.0, 4.0]])
    clipped = clip_near(quad)
    assert (clipped[:, 2] >= NEAR - 1e-12).all()
    assert sorted(clipped[:, 2].round(6).tolist()) == [NEAR, NEAR, 4.0, 4.0]
    camera_cf = cam.look_at([0.0, 2.0, 0.5], [0.0, 2.0, -5.0])
    view = View.of(camera_cf, FOV_Y, VIEWPORT)
    identity = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    around = Box((0.0, 2.0, 0.0, *identity), (3.0, 3.0, 3.0), (0, 0, 250))  # camera inside
    image = draw_scene(view, [around], ground=False)
    assert image.shape == (360, 640, 3)


def test_timecode_strip_decodes_to_the_frame_seq():
    state = _state_at(2.0)
    for seq in (0, 1, 123_456):
        image = render_state(state, seq, VIEWPORT).image
        cell = DEFAULT_CELL
        row_y = VIEWPORT[1] - 3 * cell + cell + cell // 2
        middle = [image[row_y, c * cell + cell // 2, 0] > 127 for c in range(1, COLUMNS - 1)]
        assert cells_to_payload(np.array(middle, int)) == seq
