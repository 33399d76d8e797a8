"""Events, movement direction and captions on synthetic trajectories with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capture import Session
from pipeline.camera import look_at
from pipeline.labels import compute_labels, read_label_events, write_labels
from pipeline.labels._events import (
    Event,
    airborne_mask,
    hysteresis,
    jump_events,
    key_events,
    moving_events,
    runs,
    sort_events,
    turn_events,
)
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
    assert runs([0, 2, 2, 0, 1, 1], min_gap=1) == [(1, 2), (4, 5)]  # non-zero values hold
    speed = np.array([0, 2, 0.7, 0.7, 0.2, 0.7, 1.5])
    assert hysteresis(speed, 1.0, 0.5).tolist() == [False, True, True, True, False, False,
                                                     True]


def _spans(events):
    return [(e.kind, e.start, e.end, e.details) for e in events]


def test_hysteresis_thresholds_are_strict_and_nan_holds():
    """On above 1.0 (not at it), off below 0.5 (not at it); NaN and values in between hold
    the previous state; a series starting in between starts off."""
    value = np.array([0.7, 1.0, 1.01, 0.5, 0.49, 0.7, np.nan, 2.0])
    assert hysteresis(value, 1.0, 0.5).tolist() == [False, False, True, True, False, False,
                                                     False, True]
    assert hysteresis(np.array([2.0, 0.7, np.nan]), 1.0, 0.5).tolist() == [True, True, True]
    assert hysteresis(np.array([0.7]), 1.0, 0.5).tolist() == [False]
    assert hysteresis(np.zeros(0), 1.0, 0.5).tolist() == []


def test_airborne_states_and_air_floor():
    state = np.array(["Running", "Jumping", "Freefall", "FallingDown", "Flying", "Landed",
                      "Climbing", "Swimming"], dtype=object)
    floor = np.array(["Grass", "Grass", "Grass", "Grass", "Grass", "Grass", "Air", ""],
                     dtype=object)
    assert airborne_mask(state, floor).tolist() == [False, True, True, True, True, False,
                                                    True, False]


def test_jump_airborne_and_land_rows_by_hand():
    state = np.array(["Running", "Jumping", "Jumping", "Freefall", "Freefall", "Running",
                      "Running", "Freefall", "Freefall"], dtype=object)
    airborne = np.array([0, 1, 1, 1, 1, 0, 0, 1, 1], bool)
    assert _spans(jump_events(state, airborne)) == [
        ("jump", 1, 2, {}), ("airborne", 1, 4, {"frames": 4}), ("land", 5, 5, {}),
        # a fall (no Jumping frame) still airborne at the last row: no jump, no land
        ("airborne", 7, 8, {"frames": 2})]
    # a flight of Jumping frames only, landing on the last row
    short = np.array(["Running", "Jumping", "Jumping", "Running"], dtype=object)
    assert _spans(jump_events(short, np.array([0, 1, 1, 0], bool))) == [
        ("jump", 1, 2, {}), ("airborne", 1, 2, {"frames": 2}), ("land", 3, 3, {})]


def test_start_and_stop_moving_rows_by_hand():
    """No start at row 0 (already moving) and no stop after the last row."""
    speed = np.array([2.0, 2.0, 0.2, 0.2, 2.0, 2.0])
    assert _spans(moving_events(speed)) == [("stop_moving", 2, 2, {}),
                                            ("start_moving", 4, 4, {})]
    assert _spans(moving_events(np.array([0.0, 2.0, 2.0, 0.0]))) == [
        ("start_moving", 1, 1, {}), ("stop_moving", 3, 3, {})]


def test_turn_rows_direction_and_degrees_by_hand():
    """Yaw rate 2 rad/s (over the 90 deg/s threshold) for frames 2..4 turning right: the
    turn starts at the frame before the first fast step and spans 0.6 rad = 34.377 deg."""
    t = np.arange(6) * 0.1
    right = turn_events(np.array([1.0, 1.0, 0.8, 0.6, 0.4, 0.4]), t, "camera")
    assert _spans(right) == [("turn", 1, 4, {"subject": "camera", "direction": "right",
                                             "degrees": 34.377})]
    # fast from row 1: the turn starts at row 0; a NaN heading counts as no turn
    left = turn_events(np.array([0.0, 0.2, 0.4, np.nan, 0.4]), t[:5] / 2, "character")
    assert _spans(left) == [("turn", 0, 2, {"subject": "character", "direction": "left",
                                            "degrees": 22.918})]
    # 80 deg/s either way is under the threshold, and exactly 90 deg/s does not exceed it
    slow = np.radians(80.0) * t
    assert turn_events(slow, t, "camera") == turn_events(-slow, t, "camera") == []
    quarter = np.radians(90.0)
    assert turn_events(np.array([0.0, quarter, 2 * quarter]), np.arange(3.0), "camera") == []
    assert turn_events(np.zeros(1), np.zeros(1), "camera") == []


def test_key_press_release_rows_and_event_order_by_hand():
    keys = [["W"], ["W", "A"], [], ["A"], ["A"]]
    events = key_events(keys)
    assert _spans(events) == [
        ("press", 1, 1, {"key": "A"}), ("release", 2, 2, {"key": "A"}),
        ("press", 3, 4, {"key": "A"}),  # held to the end: no release
        ("press", 0, 1, {"key": "W"}), ("release", 2, 2, {"key": "W"})]
    # by start, then kind, then end, then details
    assert _spans(sort_events(events)) == [
        ("press", 0, 1, {"key": "W"}), ("press", 1, 1, {"key": "A"}),
        ("release", 2, 2, {"key": "A"}), ("release", 2, 2, {"key": "W"}),
        ("press", 3, 4, {"key": "A"})]
    tied = [Event("turn", 0, 3), Event("turn", 0, 2), Event("jump", 0, 5),
            Event("press", 0, 0, {"key": "W"}), Event("press", 0, 0, {"key": "A"})]
    assert [(e.kind, e.end, e.details) for e in sort_events(tied)] == [
        ("jump", 5, {}), ("press", 0, {"key": "A"}), ("press", 0, {"key": "W"}),
        ("turn", 2, {}), ("turn", 3, {})]
    # released on the last row
    assert _spans(key_events([["W"], []])) == [("press", 0, 0, {"key": "W"}),
                                               ("release", 1, 1, {"key": "W"})]


def test_event_record_uses_frame_index_and_times():
    record = Event("press", 1, 2, {"key": "A"}).record(np.array([10, 12, 15]),
                                                      np.array([0.5, 0.6, 0.75]))
    assert record == {"kind": "press", "start_frame": 12, "end_frame": 15, "start_t": 0.6,
                      "end_t": 0.75, "key": "A"}
    assert type(record["start_frame"]) is int and type(record["end_t"]) is float
