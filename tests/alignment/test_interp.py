"""Interpolating the state at each frame: rotations (matrix and quaternion, slerp) against
an independent axis-angle formula, and `state_at_frames` column by column."""

import math

import numpy as np
import pytest

from alignment import match_frames
from alignment._interp import interpolate_cframes, matrix_to_quat, quat_to_matrix, slerp
from alignment._match import CLOCK, NONE


def _rot_y(angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


@pytest.mark.parametrize("angle", [0.0, 0.3, 2.0, math.pi - 1e-3])
def test_quaternion_round_trip(angle):
    r = _rot_y(angle) @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]])
    assert quat_to_matrix(matrix_to_quat(r)) == pytest.approx(r, abs=1e-12)


def _axis_angle(axis, degrees):
    """Oracle: the rotation matrix (Rodrigues' formula) and quaternion xyzw (n sin(a/2),
    cos(a/2)) of a turn by `degrees` about `axis`."""
    n = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    a = math.radians(degrees)
    k = np.array([[0, -n[2], n[1]], [n[2], 0, -n[0]], [-n[1], n[0], 0]])
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * k @ k, \
        np.r_[n * math.sin(a / 2), math.cos(a / 2)]


# every component largest in turn, all four non-zero (x, y or z largest: |a| = 120 degrees,
# w = 1/2; w largest: 60 degrees), negative turns (the largest component of the other sign
# than w), half and quarter turns (components 0, ties between the largest), and turns
# next to those whose smallest component is about 1e-7: a quaternion taken from that
# component's row of the matrix would be off by 1e-10 or more, 1e-16 from the largest's


@pytest.mark.parametrize(("axis", "degrees"), [
    ((6, 3, 2), 120), ((6, 3, 2), -120), ((2, 6, 3), 120), ((2, 6, 3), -120),
    ((3, 2, 6), 120), ((3, 2, 6), -120), ((6, 3, 2), 60), ((1, 1, 1), 120),
    ((1, 0, 0), 180), ((0, 1, 0), 180), ((0, 0, 1), 180), ((0, 1, 1), 180), ((1, 0, 1), 180),
    ((1, 1, 0), 180), ((1, 0, 0), 90), ((0, 1, 0), 90), ((0, 0, 1), -90),
    ((1e-7, 1, 1), 180), ((1, 1e-7, 1), 180), ((1, 1, 1e-7), 180),
    ((1, 1e-7, 0), 90), ((0, 1, 1e-7), 90), ((1, 0, 1e-7), 90),
    ((1, 1, 0), 179.99999), ((1, 0, 1), 179.99999), ((0, 1, 1), 179.99999),
])
def test_matrix_to_quat_and_back_against_axis_angle(axis, degrees):
    r, q = _axis_angle(axis, degrees)
    out = matrix_to_quat(r)
    if abs(q[3]) > 1e-9:  # w >= 0: of q and -q (one rotation) the one with w > 0
        assert out == pytest.approx(q if q[3] > 0 else -q, abs=1e-12)
    else:  # a half turn: w = 0 either way
        assert min(np.abs(out - q).max(), np.abs(out + q).max()) < 1e-12
    assert quat_to_matrix(q) == pytest.approx(r, abs=1e-12)
    assert quat_to_matrix(-2.5 * q) == pytest.approx(r, abs=1e-12)  # normalised first


def test_slerp_of_a_rotation_with_itself_is_itself():
    # |q|^2 rounds to 1 + 2**-52 here: arccos of the unclipped dot product would be NaN
    q = np.array([1.0, 1.0, 1.0, 3.0]) / math.sqrt(12.0)
    assert np.sum(q * q) > 1.0
    out = slerp(np.tile(q, (3, 1)), np.tile(q, (3, 1)), np.array([0.0, 0.5, 1.0]))
    assert out == pytest.approx(np.tile(q, (3, 1)), abs=1e-15)


def test_slerp_between_rotations_closer_than_arccos_resolves():
    # about y by 0 and by 2e-8 rad: their dot product rounds to 1 (angle 0 to arccos), so
    # the quaternions are blended linearly; the turn by w * 2e-8 is still what comes out
    def about_y(angle):
        return np.array([0.0, math.sin(angle / 2), 0.0, math.cos(angle / 2)])

    w = np.array([0.0, 0.25, 1.0])
    out = slerp(np.tile(about_y(0.0), (3, 1)), np.tile(about_y(2e-8), (3, 1)), w)
    assert out == pytest.approx(np.array([about_y(2e-8 * x) for x in w]), abs=1e-16)


def test_slerp_batch_by_hand():
    # about y from 0 to 90 degrees and about z from 0 to 60 degrees, a third of the way:
    # 30 and 20 degrees, each a unit quaternion of its own
    q0 = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    q1 = np.array([[0.0, math.sin(math.pi / 4), 0.0, math.cos(math.pi / 4)],
                   [0.0, 0.0, math.sin(math.pi / 6), math.cos(math.pi / 6)]])
    out = slerp(q0, q1, np.array([1 / 3, 1 / 3]))
    expected = [[0.0, math.sin(math.pi / 12), 0.0, math.cos(math.pi / 12)],
                [0.0, 0.0, math.sin(math.pi / 18), math.cos(math.pi / 18)]]
    assert out == pytest.approx(np.array(expected), abs=1e-12)


def test_slerp_halfway_and_shorter_arc():
    q0 = matrix_to_quat(_rot_y(0.2))
    q1 = matrix_to_quat(_rot_y(1.0))
    half = quat_to_matrix(slerp(q0, -q1, np.array(0.5)))  # -q1 is the same rotation
    assert half == pytest.approx(_rot_y(0.6), abs=1e-12)


def test_interpolate_cframes_position_linear_rotation_slerp():
    c0 = np.r_[0.0, 0.0, 0.0, _rot_y(0.0).ravel()][None]
    c1 = np.r_[10.0, 2.0, -4.0, _rot_y(1.2).ravel()][None]
    out = interpolate_cframes(c0, c1, np.array([0.25]))
    assert out[0, :3] == pytest.approx([2.5, 0.5, -1.0])
    assert out[0, 3:].reshape(3, 3) == pytest.approx(_rot_y(0.3), abs=1e-12)


def test_entities_held_on_both_sides_are_interpolated_the_rest_taken_nearest():
    from alignment._interp import state_at_frames
    from alignment._match import Matching
    from capture._arrow import state_table_from_records
    from tests.conftest import make_sample

    def entity(id_, x, angle):
        return {"id": id_, "name": id_, "tag": "STPE_Track",
                "cframe": [x, 1.0, 0.0, *_rot_y(angle).reshape(-1)], "size": [2.0, 2.0, 2.0],
                "velocity": [0.0, 0.0, 0.0], "projection": [0.0, 0.0, 5.0, 1.0]}

    samples = [make_sample(0, 0.0), make_sample(1, 0.1), make_sample(2, 0.2)]
    samples[0]["entities"] = [entity("a", 0.0, 0.0), entity("b", 9.0, 0.0)]
    samples[1]["entities"] = [entity("a", 4.0, math.pi / 2)]
    samples[2]["entities"] = []
    state = state_table_from_records([{"arrival_mono_ns": i, "arrival_wall_ns": i, "sample": s}
                                      for i, s in enumerate(samples)])
    # frame 0: 25 % of the way from sample 0 to 1 (nearest 0); frame 1: 75 % (nearest 1);
    # frame 2: between 1 and 2, where "a" is gone; frame 3: unmatched
    m = Matching(nearest=np.array([0, 1, 2, -1]), left=np.array([0, 0, 1, 0]),
                 right=np.array([1, 1, 2, 0]), weight=np.array([0.25, 0.75, 0.5, 0.0]),
                 residual_ms=np.zeros(4), method=np.array([CLOCK, CLOCK, CLOCK, NONE]))
    out = state_at_frames(state, m)["entities"].to_pylist()
    first = {e["id"]: e for e in out[0]}
    assert first["a"]["cframe"][0] == pytest.approx(1.0)
    rotation = np.array(first["a"]["cframe"][3:]).reshape(3, 3)
    assert rotation == pytest.approx(_rot_y(math.pi / 8), abs=1e-12)
    assert first["b"]["cframe"][0] == 9.0  # only on the left: the nearest sample's value
    (a,) = out[1]
    assert a["cframe"][0] == pytest.approx(3.0)
    assert np.array(a["cframe"][3:]).reshape(3, 3) == pytest.approx(_rot_y(3 * math.pi / 8),
                                                                      abs=1e-12)
    assert out[2] == [] and out[3] is None


def test_state_at_frames_by_hand():
    from alignment._interp import state_at_frames
    from alignment._match import Matching
    from capture._arrow import state_table_from_records
    from tests.conftest import make_sample

    s0, s1, s2 = make_sample(0, 0.0), make_sample(1, 0.1), make_sample(2, 0.2,
                                                                        with_character=False)
    s1["dt"] = 1 / 30
    s1["camera"]["fov_y"] = 80.0
    s1["camera"]["root_projection"] = [700.0, 500.0, 20.0, 0.0]
    s2["camera"]["root_projection"] = [800.0, 600.0, 30.0, 1.0]
    s0["camera"]["root_projection"] = [600.0, 400.0, 10.0, 1.0]
    s1["character"]["humanoid"]["health"] = 50.0
    s1["character"]["humanoid"]["state"] = "Jumping"
    s1["character"]["root"]["cframe"][3:] = _rot_y(0.8).ravel().tolist()
    state = state_table_from_records([{"arrival_mono_ns": i, "arrival_wall_ns": i, "sample": s}
                                      for i, s in enumerate([s0, s1, s2])])
    # f0, f1: 25 % and 75 % from sample 0 to 1; f2: halfway from 1 to 2 (no character in 2,
    # nearest 2); f3: 40 % from 1 to 2, nearest 1; f4 unmatched
    m = Matching(nearest=np.array([0, 1, 2, 1, -1]), left=np.array([0, 0, 1, 1, 0]),
                 right=np.array([1, 1, 2, 2, 0]), weight=np.array([0.25, 0.75, 0.5, 0.4, 0.0]),
                 residual_ms=np.zeros(5), method=np.array([CLOCK] * 4 + [NONE]))
    out = {name: array.to_pylist() for name, array in state_at_frames(state, m).items()}
    assert "seq" not in out and "t" not in out
    assert out["client_t"] == pytest.approx([0.025, 0.075, 0.15, 0.14, None])
    assert out["dt"] == pytest.approx([1 / 60, 1 / 30, 1 / 60, 1 / 30, None])  # nearest
    assert out["camera.fov_y"] == pytest.approx([72.5, 77.5, 75.0, 76.0, None])
    # a null on either side takes the nearest sample's value
    assert out["character.humanoid.health"] == pytest.approx([87.5, 62.5, None, 50.0, None])
    assert out["character.humanoid.state"] == ["Running", "Jumping", None, "Jumping", None]
    # projections: u, v and depth linear, the on-screen flag of the nearer side in weight
    assert out["camera.root_projection"] == [[625.0, 425.0, 12.5, 1.0],
                                             [675.0, 475.0, 17.5, 0.0],
                                             [750.0, 550.0, 25.0, 1.0],
                                             [740.0, 540.0, 24.0, 0.0], None]
    root = out["character.root.cframe"]
    assert root[0][:3] == pytest.approx([0.1, 3.0, 0.0])
    assert np.reshape(root[0][3:], (3, 3)) == pytest.approx(_rot_y(0.2), abs=1e-12)
    assert np.reshape(root[1][3:], (3, 3)) == pytest.approx(_rot_y(0.6), abs=1e-12)
    assert root[2] is None and root[3] == s1["character"]["root"]["cframe"] and root[4] is None
    assert out["inputs.keys"] == [["W"]] * 4 + [None]


def test_state_at_frames_when_the_nearest_sample_is_outside_the_bracket():
    from alignment._interp import state_at_frames
    from capture._arrow import state_table_from_records
    from tests.conftest import make_sample

    ms = 1e6
    samples = [make_sample(i, i / 100) for i in range(4)]
    for i, s in enumerate(samples):
        s["camera"]["fov_y"] = 70.0 + 10 * i
        s["entities"][0]["cframe"][0] = 4.0 * i  # entity e1 at x = 0, 4, 8, 12
    del samples[1]["entities"]  # optional on the wire: sample 1's entities read null
    state = state_table_from_records([{"arrival_mono_ns": i, "arrival_wall_ns": i, "sample": s}
                                      for i, s in enumerate(samples)])
    # samples at 0, 10, 20, 30 ms; the nearest is taken at the match time, the bracket and
    # weight at the content time. f0 (9, 25 ms): nearest 1, 2 to 3 at 0.5; f1 (19, 15 ms):
    # nearest 2, 1 to 2 at 0.5; f2 (21, 24 ms): nearest 2, 2 to 3 at 0.4; f3 (25, 30 ms):
    # a tie at match time goes to sample 2, content time on sample 3 (weight 0)
    m = match_frames(np.array([9, 19, 21, 25]) * ms, np.array([0, 10, 20, 30]) * ms,
                     content_ns=np.array([25, 15, 24, 30]) * ms)
    assert m.nearest.tolist() == [1, 2, 2, 2]
    assert (m.left.tolist(), m.right.tolist()) == ([2, 1, 2, 3], [3, 2, 3, 3])
    assert m.weight == pytest.approx([0.5, 0.5, 0.4, 0.0])
    out = state_at_frames(state, m)
    # weight 0 takes the nearest sample's value, not the bracket's (100)
    assert out["camera.fov_y"].to_pylist() == pytest.approx([95.0, 85.0, 94.0, 90.0])
    entities = out["entities"].to_pylist()
    assert entities[0] is None  # the nearest sample's null, though both sides hold e1
    assert entities[1][0]["cframe"][0] == 8.0  # one side null: nothing to blend with
    assert entities[2][0]["cframe"][0] == pytest.approx(9.6)  # 8 + 0.4 * (12 - 8)
    assert entities[3][0]["cframe"][0] == 8.0  # weight 0: sample 2's own
    for name, array in out.items():  # every column keeps the state's type
        assert array.type == state.schema.field("t" if name == "client_t" else name).type


def test_state_at_frames_of_a_single_sample():
    from alignment._interp import state_at_frames
    from capture._arrow import state_table_from_records
    from tests.conftest import make_sample

    state = state_table_from_records([{"arrival_mono_ns": 0, "arrival_wall_ns": 0,
                                       "sample": make_sample(0, 0.0)}])
    m = match_frames(np.array([0.0, 500e6]), np.array([0.0]))  # the second 500 ms away
    assert m.nearest.tolist() == [0, -1]
    out = state_at_frames(state, m)
    assert out["camera.fov_y"].to_pylist() == [70.0, None]
    assert out["camera.cframe"].to_pylist() == [[0.0, 5.0, 10.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0,
                                                 0.0, 0.0, 1.0], None]
    assert [e and e[0]["id"] for e in out["entities"].to_pylist()] == ["e1", None]
