"""compute_labels on hand-built sessions whose every label is worked out by hand: a camera
at a fixed eye turning about +Y with the root 10 studs straight ahead (so the root is always
at the image centre), engine projections chosen to give known errors, gaps with no state,
and a crate straddling the frame's right edge."""

from __future__ import annotations

import logging
import math

import pyarrow as pa
import pytest

from capture import Session
from capture._synthetic import look_at, synthetic_sample
from pipeline.labels import compute_labels
from tests.pipeline.session_kit import make_session

W, H = 1280, 720
F = (H / 2) / math.tan(math.radians(35.0))  # focal length in px for fov_y 70 at 720 px
EYE = (0.0, 5.0, 0.0)
IDENTITY = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]


def _sample(seq: int, yaw_deg: float, *, state: str = "Running", floor: str = "Grass",
            speed: float = 0.0, keys: tuple[str, ...] = (),
            projection: tuple[float, ...] = (640.0, 360.0, 10.0, 1.0),
            crate: bool = False, ahead: float = 10.0) -> dict:
    """Camera at EYE looking at yaw `yaw_deg` (0: down -Z, positive: turned left); the root
    `ahead` studs along the look, axis-aligned, running along +X at `speed`."""
    yaw = math.radians(yaw_deg)
    look = (-math.sin(yaw), 0.0, -math.cos(yaw))
    root = [EYE[i] + ahead * look[i] for i in range(3)]
    s = synthetic_sample(seq, seq / 10)
    s["camera"].update(cframe=look_at(EYE, tuple(EYE[i] + look[i] for i in range(3))),
                       fov_y=70.0, viewport=[float(W), float(H)],
                       root_projection=list(projection))
    ch = s["character"]
    ch["humanoid"].update(state=state, floor_material=floor, move_direction=[0.0, 0.0, 0.0],
                          jump=state == "Jumping")
    ch["root"].update(cframe=[*root, *IDENTITY], velocity=[speed, 0.0, 0.0])
    ch["bbox"].update(cframe=[*root, *IDENTITY], size=[2.0, 2.0, 2.0])
    s["inputs"]["keys"] = list(keys)
    # the crate: a 2-stud cube centred 11 studs right of and 10 ahead of the eye
    s["entities"] = [{"id": "crate-1", "name": "Crate", "tag": "STPE_Track",
                      "cframe": [11.0, 5.0, -10.0, *IDENTITY], "size": [2.0, 2.0, 2.0],
                      "velocity": [0.0, 0.0, 0.0], "projection": [0.0, 0.0, 0.0, 0.0]}
                     ] if crate else []
    return s


# frame: (yaw, overrides); frame 2 has no state
FRAMES = {
    0: (0.0, {"speed": 16.0, "keys": ("W",), "projection": (643.0, 364.0, 10.0, 1.0),
              "crate": True}),  # engine 3-4-5 px off
    1: (0.0, {"speed": 16.0, "keys": ("W",), "projection": (645.0, 372.0, 10.0, 0.0)}),
    # ^ 5-12-13 px off, flagged off-screen: still an engine value (its depth is > 0)
    3: (0.0, {"state": "Jumping", "projection": (640.0, 360.0, 0.5, 1.0)}),  # airborne by state
    4: (0.0, {"floor": "Air", "projection": (640.0, 360.0, 0.0, 0.0)}),  # airborne by floor;
    # depth 0: no engine value
    5: (0.0, {"projection": (700.0, 300.0, -10.0, 0.0)}),  # behind the engine camera
    6: (18.0, {}),  # the camera turns left 18 deg per 0.1 s = pi rad/s
    7: (36.0, {}),
}


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    samples = [_sample(i, yaw, **kw) for i, (yaw, kw) in FRAMES.items()]
    frame_samples = [i if i in FRAMES else None for i in range(8)]
    path = make_session(tmp_path_factory.mktemp("compute"), samples, frame_samples,
                        [i / 10 for i in range(8)])
    return compute_labels(Session.open(path))


def test_the_table_has_the_contract_columns_and_types(labels):
    f2, f3 = pa.list_(pa.float64(), 2), pa.list_(pa.float64(), 3)
    objects = pa.struct([
        ("id", pa.string()), ("name", pa.string()), ("kind", pa.string()),
        ("box_xyxy", pa.list_(pa.float64(), 4)), ("truncation", pa.float64()),
        ("on_screen", pa.bool_()), ("behind_camera", pa.bool_()), ("distance", pa.float64()),
        ("depth", pa.float64()), ("image_motion", f2), ("camera_caused_motion", f2),
        ("object_caused_motion", f2)])
    expected = pa.schema([
        ("frame_index", pa.int64()), ("t", pa.float64()), ("seq", pa.int64()),
        ("residual_ms", pa.float64()), ("method", pa.string()),
        ("K", pa.list_(pa.float64(), 9)), ("T_cam_world", pa.list_(pa.float64(), 16)),
        ("cam_position", f3), ("cam_quat_xyzw", pa.list_(pa.float64(), 4)),
        ("root_px", f2), ("root_px_engine", f2), ("root_px_error", pa.float64()),
        ("root_depth", pa.float64()), ("root_distance", pa.float64()),
        ("objects", pa.list_(objects)), ("cam_velocity", f3), ("cam_angular_velocity", f3),
        ("humanoid_state", pa.string()), ("grounded", pa.bool_()), ("speed", pa.float64()),
        ("move_dir_cam", pa.string()), ("keys", pa.list_(pa.string())),
        ("caption", pa.string())])
    assert labels.table.schema.remove_metadata().equals(expected)
    assert labels.table.column("t").to_pylist() == pytest.approx([i / 10 for i in range(8)])


def _close(got: list, want: list) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if w is None:
            assert g is None
        else:
            assert g == pytest.approx(w, abs=1e-6)


def test_frames_without_state_are_null_and_engine_values_need_positive_depth(labels):
    col = labels.table.to_pydict()
    # K = [[F, 0, 640], [0, F, 360], [0, 0, 1]] at scale 1; null with no state
    k = [F, 0.0, 640.0, 0.0, F, 360.0, 0.0, 0.0, 1.0]
    _close(col["K"], [k, k, None, k, k, k, k, k])
    assert [r is None for r in col["T_cam_world"]] == [i == 2 for i in range(8)]
    _close(col["cam_position"], [list(EYE)] * 2 + [None] + [list(EYE)] * 5)
    assert [r is None for r in col["cam_quat_xyzw"]] == [i == 2 for i in range(8)]
    # the root is 10 studs straight ahead: the image centre, depth and distance 10
    centre = [640.0, 360.0]
    _close(col["root_px"], [centre, centre, None] + [centre] * 5)
    _close(col["root_depth"], [10.0, 10.0, None] + [10.0] * 5)
    _close(col["root_distance"], [10.0, 10.0, None] + [10.0] * 5)
    # engine values only where the engine's depth is > 0 (frames 4: 0 and 5: -10 are not)
    _close(col["root_px_engine"], [[643.0, 364.0], [645.0, 372.0], None, centre, None, None,
                                   centre, centre])
    _close(col["root_px_error"], [5.0, 13.0, None, 0.0, None, None, 0.0, 0.0])
    _close(col["speed"], [16.0, 16.0, None, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert col["humanoid_state"] == ["Running", "Running", None, "Jumping", "Running",
                                     "Running", "Running", "Running"]
    # frame 3 airborne by its state, frame 4 by its floor (Air)
    assert col["grounded"] == [True, True, False, False, False, True, True, True]
    assert col["keys"] == [["W"], ["W"], [], [], [], [], [], []]


def test_camera_rates_are_null_where_a_neighbour_has_no_state(labels):
    col = labels.table.to_pydict()
    zero = [0.0, 0.0, 0.0]
    # the eye never moves; frame 3's predecessor (frame 2) has no state
    _close(col["cam_velocity"], [zero, zero, None, None, zero, zero, zero, zero])
    # 18 deg per 0.1 s = pi rad/s to the left, about world +Y = the camera's -y (y is down)
    spin = [0.0, -math.pi, 0.0]
    _close(col["cam_angular_velocity"], [zero, zero, None, None, zero, zero, spin, spin])


def test_objects_list_the_character_then_entities_with_clipped_boxes(labels):
    frame0 = labels.table.column("objects").to_pylist()[0]
    assert [(o["id"], o["name"], o["kind"]) for o in frame0] == [
        ("character", "character", "character"), ("crate-1", "Crate", "entity")]
    crate = frame0[1]
    # the cube spans x 10..12 and depths 9..11 at eye height +-1: u from the far face's
    # left edge to the near face's right edge, v +-F/9 about the centre
    u0, u1 = 640 + F * 10 / 11, 640 + F * 12 / 9
    v0, v1 = 360 - F / 9, 360 + F / 9
    assert u0 < W < u1
    assert crate["box_xyxy"] == pytest.approx([u0, v0, W, v1])
    assert crate["truncation"] == pytest.approx(1 - (W - u0) / (u1 - u0))
    assert crate["on_screen"] and not crate["behind_camera"]
    assert crate["depth"] == pytest.approx(10.0)
    assert crate["distance"] == pytest.approx(math.sqrt(11**2 + 10**2))
    offsets = [len(r) for r in labels.table.column("objects").to_pylist()]
    assert offsets == [2, 1, 0, 1, 1, 1, 1, 1]


def test_events_and_summary(labels):
    def ev(kind, start, end, **details):
        return {"kind": kind, "start_frame": start, "end_frame": end,
                "start_t": pytest.approx(start / 10), "end_t": pytest.approx(end / 10),
                **details}
    assert labels.events == [
        ev("press", 0, 1, key="W"),
        ev("release", 2, 2, key="W"),
        # moving at 16 studs/s on frames 0-1; frame 2 has no character: speed 0 there
        ev("stop_moving", 2, 2),
        ev("airborne", 3, 4, frames=2),
        ev("jump", 3, 3),
        ev("land", 5, 5),
        # the turn starts at the frame before the first fast step
        ev("turn", 5, 7, subject="camera", direction="left", degrees=pytest.approx(36.0)),
    ]
    # errors 5, 13, 0, 0, 0: sorted 0 0 0 5 13; p95 at rank 0.95 * 4 = 3.8: 5 + 0.8 * 8
    assert labels.summary == {
        "frames": 8, "frames_with_state": 7,
        "root_px_error": {"frames": 5, "mean": pytest.approx(3.6),
                          "p95": pytest.approx(11.4), "max": pytest.approx(13.0)},
        "capture_aspect_mismatch": 0.0,
        "events": {"airborne": 1, "jump": 1, "land": 1, "press": 1, "release": 1,
                   "stop_moving": 1, "turn": 1},
    }


def test_two_frames_caption_the_camera_turn(tmp_path):
    samples = [_sample(0, 0.0), _sample(1, 18.0)]
    labels = compute_labels(Session.open(make_session(tmp_path, samples, [0, 1], [0.0, 0.1])))
    assert labels.table.column("caption").to_pylist() == [
        "The character stands still; no keys are held.",
        "The character stands still; no keys are held; the camera turns left at 180 deg/s."]


def test_a_session_without_state_keeps_the_column_types(tmp_path):
    samples = [_sample(0, 0.0)]
    path = make_session(tmp_path, samples, [None, None, None], [0.0, 0.1, 0.2])
    labels = compute_labels(Session.open(path))
    schema = labels.table.schema
    assert schema.field("humanoid_state").type == pa.string()
    assert schema.field("keys").type == pa.list_(pa.string())
    for name in ("root_depth", "root_distance", "speed", "root_px_error"):
        assert schema.field(name).type == pa.float64()
    assert labels.table.column("objects").to_pylist() == [[], [], []]
    assert labels.summary == {
        "frames": 3, "frames_with_state": 0,
        "root_px_error": {"frames": 0, "mean": None, "p95": None, "max": None},
        "capture_aspect_mismatch": 0.0, "events": {}}


@pytest.mark.parametrize(("scale", "mismatch"), [((1.0, 0.8), 0.25), ((0.8, 1.0), 0.25)])
def test_a_squashed_capture_is_measured_and_warned_about(tmp_path, caplog, scale, mismatch):
    # sx / sy = 1.25 (or 0.8, whose inverse is 1.25): 25 % either way
    path = make_session(tmp_path, [_sample(0, 0.0)], [0], [0.0], scale=scale)
    with caplog.at_level(logging.WARNING, logger="pipeline.labels._compute"):
        summary = compute_labels(Session.open(path)).summary
    assert summary["capture_aspect_mismatch"] == pytest.approx(mismatch)
    assert [r.getMessage() for r in caplog.records] == [
        "capture scale differs between x and y by 25.0 %: the captured frame's aspect ratio "
        "is not the viewport's; K keeps fx != fy instead of squashing (check the recorder "
        "region)"]


def test_a_square_capture_logs_nothing(tmp_path, caplog):
    path = make_session(tmp_path, [_sample(0, 0.0)], [0], [0.0])
    with caplog.at_level(logging.WARNING, logger="pipeline.labels._compute"):
        assert compute_labels(Session.open(path)).summary["capture_aspect_mismatch"] == 0.0
    assert caplog.records == []


def test_a_root_behind_the_camera_has_a_depth_but_no_pixel(tmp_path):
    # root 10 studs behind the eye: depth -10, distance 10, no projection and so no error,
    # though the engine's own value (depth 10 > 0) is kept
    path = make_session(tmp_path, [_sample(0, 0.0, ahead=-10.0)], [0], [0.0])
    row = compute_labels(Session.open(path)).table.to_pylist()[0]
    assert row["root_px"] is None
    assert row["root_depth"] == pytest.approx(-10.0)
    assert row["root_distance"] == pytest.approx(10.0)
    assert row["root_px_engine"] == pytest.approx([640.0, 360.0])
    assert row["root_px_error"] is None
