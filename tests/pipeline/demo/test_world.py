"""The demo world: valid wire samples, consistent physics and inputs, the shared camera."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from capture._wire import Sample
from pipeline import camera as cam
from pipeline.demo._sample import build_sample
from pipeline.demo._world import (
    GRAVITY,
    HIP_HEIGHT,
    JUMP_POWER,
    PROPS,
    SCRIPT_SECONDS,
    TICK_HZ,
    camera_cframe,
    initial_state,
    move_direction,
    step,
)

VIEWPORT = (640, 360)


@pytest.fixture(scope="module")
def states():
    state, out = initial_state(), []
    for _ in range(round(SCRIPT_SECONDS * TICK_HZ)):
        state = step(state)
        out.append(state)
    return out


def _sample(state, seq=0):
    return build_sample(state, seq=seq, client_t=100.0 + state.t, dt=1 / TICK_HZ,
                        wall_ms=1_700_000_000_000, viewport=VIEWPORT)


def test_every_sample_validates_against_the_wire_model(states):
    for seq, state in enumerate(states[::5]):
        sample = Sample.model_validate(_sample(state, seq))
        assert sample.seq == seq
        assert len(sample.entities) == len(PROPS)
        assert sample.camera.viewport == (640.0, 360.0)


def test_the_script_walks_runs_stops_turns_and_jumps(states):
    seen = {s.state for s in states}
    assert seen == {"Running", "Jumping", "Freefall", "Landed"}
    speeds = [math.hypot(s.velocity[0], s.velocity[2]) for s in states]
    assert max(speeds) > 20  # running with LeftShift
    assert min(speeds[TICK_HZ:]) < 0.5  # stopped
    assert max(abs(s.yaw_rate) for s in states) > 1  # turned
    assert {"W", "A", "S", "D", "Space", "LeftShift"} <= {k for s in states for k in s.keys}


def test_jump_follows_roblox_gravity_and_jump_power(states):
    apex = max(s.position[1] for s in states[: round(6 * TICK_HZ)]) - HIP_HEIGHT
    expected = JUMP_POWER**2 / (2 * GRAVITY)
    assert apex == pytest.approx(expected, abs=0.5)
    assert all(s.position[1] >= HIP_HEIGHT for s in states)


def test_keys_move_the_character_relative_to_the_camera(states):
    for state in states:
        if not state.keys or state.move_direction == (0.0, 0.0, 0.0):
            continue
        cf = camera_cframe(state)
        look = -cf[[5, 8, 11]]  # the camera's -Z column
        forward = np.array([look[0], 0.0, look[2]]) / np.hypot(look[0], look[2])
        direction = np.array(state.move_direction)
        if state.keys == ("W",):
            assert direction @ forward == pytest.approx(1.0, abs=1e-9)
        if state.keys == ("S",):
            assert direction @ forward == pytest.approx(-1.0, abs=1e-9)
        if state.keys == ("A",):
            assert abs(direction @ forward) < 1e-9
    assert move_direction((), 0.3).tolist() == [0.0, 0.0, 0.0]


def test_moving_state_agrees_with_its_velocity(states):
    for a, b in itertools.pairwise(states):
        displacement = (np.array(b.position) - np.array(a.position)) * TICK_HZ
        np.testing.assert_allclose(displacement[[0, 2]], np.array(b.velocity)[[0, 2]],
                                   atol=1e-9)


def test_engine_projections_match_the_labels_camera_model(states):
    """The demo engine's own WorldToViewportPoint against pipeline.camera, a second model."""
    for state in states[::30]:
        sample = _sample(state)
        k = cam.intrinsics(sample["camera"]["fov_y"], np.array(sample["camera"]["viewport"]))
        t = cam.extrinsics(np.array(sample["camera"]["cframe"]))
        root = np.array(sample["character"]["root"]["cframe"][:3])
        uv, depth = cam.project(root[None], k, t)
        u, v, d, on_screen = sample["camera"]["root_projection"]
        np.testing.assert_allclose([u, v, d], [*uv[0], depth[0]], atol=1e-9)
        assert on_screen == 1.0  # the follow camera always sees the character
        for entity in sample["entities"]:
            uv, depth = cam.project(np.array(entity["cframe"][:3])[None], k, t)
            if depth[0] > 0:
                np.testing.assert_allclose(entity["projection"][:3], [*uv[0], depth[0]],
                                           atol=1e-9)


def test_the_world_is_deterministic(states):
    again = initial_state()
    for _ in range(len(states)):
        again = step(again)
    assert again == states[-1]
