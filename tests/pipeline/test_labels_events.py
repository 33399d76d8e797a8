"""Events, movement direction and captions on synthetic trajectories with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capture import Session
from pipeline.camera import look_at
from pipeline.labels import compute_labels, read_label_events, write_labels
from pipeline.labels._events import hysteresis, runs
from tests.conftest import make_sample
from tests.pipeline.session_kit import make_session

FPS = 30
STOP = (40, 59)  # frames standing still
JUMP = (70, 85)  # airborne frames; Jumping for the first 3
TURN = (100, 109)  # the character turns 180 degrees left, 18 degrees a frame


def _heading_cframe(pos, angle):
    """Root CFrame at `pos` looking along heading `angle` (0: -Z, positive: to the left)."""
    eye = np.asarray(pos, float)
    return look_at(eye, eye + np.array([-math.sin(angle), 0.0, -math.cos(angle)])).tolist()


def trajectory(n: int = 130) -> list[dict]:
    samples, x, z, angle = [], 0.0, 0.0, 0.0
    for i in range(n):
        s = make_sample(i, i / FPS)
        h, ch = s["character"]["humanoid"], s["character"]
        velocity, keys, direction = [10.0, 0.0, 10.0], ["D", "S"], [0.7071, 0.0, 0.7071]
        if STOP[0] <= i <= STOP[1]:
            velocity, keys, direction = [0.0, 0.0, 0.0], [], [0.0, 0.0, 0.0]
            if i == 50:
                velocity = [0.8, 0.0, 0.0]  # one frame of noise stays under the start speed
        if TURN[0] <= i <= TURN[1]:
            angle += math.radians(18)
        x, z = x + velocity[0] / FPS, z + velocity[2] / FPS
        y = 3.0
        if JUMP[0] <= i <= JUMP[1]:
            h["state"] = "Jumping" if i < JUMP[0] + 3 else "Freefall"
            h["floor_material"] = "Air"
            y = 3.0 + 4.0 * math.sin(math.pi * (i - JUMP[0] + 1) / 17)
            keys = [*keys, "Space"] if i < JUMP[0] + 3 else keys
        ch["root"]["cframe"] = _heading_cframe([x, y, z], angle)
        ch["root"]["velocity"] = velocity
        h["move_direction"] = direction
        s["camera"]["cframe"] = [x, 8.0, z + 14.0, 1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
        s["inputs"]["keys"] = keys
        samples.append(s)
    return samples


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    samples = trajectory()
    path = make_session(tmp_path_factory.mktemp("events"), samples, range(len(samples)),
                        [i / FPS + 0.0004 * (i % 3) for i in range(len(samples))])
    session = Session.open(path)
    labels = compute_labels(session)
    write_labels(session, labels)
    return labels, read_label_events(session)


def _events(events, kind, **match):
    return [(e["start_frame"], e["end_frame"]) for e in events
            if e["kind"] == kind and all(e.get(k) == v for k, v in match.items())]


def test_jump_airborne_land_frames(labelled):
    _, events = labelled
    assert _events(events, "jump") == [(70, 72)]
    assert _events(events, "airborne") == [JUMP]
    assert _events(events, "land") == [(86, 86)]


def test_start_and_stop_moving_ignore_noise(labelled):
    _, events = labelled
    assert _events(events, "stop_moving") == [(40, 40)]
    assert _events(events, "start_moving") == [(60, 60)]


def test_turn_has_its_frames_direction_and_angle(labelled):
    _, events = labelled
    turns = [e for e in events if e["kind"] == "turn" and e["subject"] == "character"]
    assert [(e["start_frame"], e["end_frame"], e["direction"]) for e in turns] == [
        (99, 109, "left")]
    assert turns[0]["degrees"] == pytest.approx(180.0, abs=1e-6)
    assert not [e for e in events if e["kind"] == "turn" and e["subject"] == "camera"]


def test_key_press_and_release(labelled):
    _, events = labelled
    assert _events(events, "press", key="S") == [(0, 39), (60, 129)]
    assert _events(events, "release", key="S") == [(40, 40)]
    assert _events(events, "press", key="Space") == [(70, 72)]
    assert _events(events, "release", key="Space") == [(73, 73)]
    first = events[0]
    assert first["start_t"] == 0.0 and set(first) >= {"kind", "start_frame", "end_frame",
                                                       "start_t", "end_t"}


def test_holding_s_and_d_moves_back_right_not_right(labelled):
    labels, _ = labelled
    direction = labels.table["move_dir_cam"].to_pylist()
    assert direction[10] == "back-right"
    # the per-frame label is instantaneous; only the events need the hysteresis
    assert direction[45] == "none" and direction[50] == "right"
    caption = labels.table["caption"][10].as_py()
    assert caption.startswith("Holding D and S, the character runs back-right at 14.1 studs/s")


def test_direction_sectors_follow_the_camera_yaw(tmp_path):
    samples = trajectory(4)
    # camera turned to look down +X: moving +X is forward, +Z is right
    for s in samples:
        s["camera"]["cframe"] = look_at([0, 8, 0], [10, 8, 0]).tolist()
    path = make_session(tmp_path, samples, range(4), [i / FPS for i in range(4)])
    table = compute_labels(Session.open(path)).table
    assert table["move_dir_cam"].to_pylist()[1] == "forward-right"
    assert table["speed"][1].as_py() == pytest.approx(math.hypot(10, 10))


def test_captions_describe_both_frames(labelled):
    labels, _ = labelled
    captions = labels.table["caption"].to_pylist()
    assert "it leaves the ground at frame 70" in captions[70]
    assert "Space pressed" in captions[70]
    assert "it lands at frame 86" in captions[86]
    assert "it stops at frame 40" in captions[40] and "D and S released" in captions[40]
    assert captions[45].startswith("The character stands still; no keys are held")
    assert labels.table["grounded"].to_pylist()[69:71] == [True, False]


def test_runs_close_short_gaps_and_drop_short_runs():
    mask = np.array([0, 1, 1, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 1], bool)
    assert runs(mask, min_frames=2, min_gap=2) == [(1, 5), (9, 13)]
    assert runs(mask, min_frames=3, min_gap=1) == [(11, 13)]
    assert runs(mask, min_frames=1, min_gap=1) == [(1, 2), (4, 5), (9, 9), (11, 13)]
    speed = np.array([0, 2, 0.7, 0.7, 0.2, 0.7, 1.5])
    assert hysteresis(speed, 1.0, 0.5).tolist() == [False, True, True, True, False, False,
                                                     True]
