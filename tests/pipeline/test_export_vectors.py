"""The `observation.state` and `action` vectors, value by value, from aligned rows written by
hand; every expected value is worked out from the layout in docs/exports.md (STATE_NAMES,
ACTION_NAMES) and Roblox's CFrame convention, not from the code."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from pipeline.export import ACTION_NAMES, STATE_NAMES
from pipeline.export._vectors import action_vectors, state_vectors

C30, S30 = math.sqrt(3) / 2, 0.5
# CFrame components: x, y, z, then the rotation row by row (R00 R01 R02 R10 ... R22); its
# columns are RightVector, UpVector and the back vector (LookVector = -column 2).
YAW_30 = [C30, 0, S30, 0, 1, 0, -S30, 0, C30]  # about +Y: LookVector (-0.5, 0, -cos 30)
LEVEL = [1, 0, 0, 0, 1, 0, 0, 0, 1]  # LookVector (0, 0, -1)
YAW_180 = [-1, 0, 0, 0, 1, 0, 0, 0, -1]  # LookVector (0, 0, 1)
# the camera: yaw 90 then pitch -30 (Roblox YXZ), R = rotY(90) rotX(-30); it looks along
# -column 2 = (-cos 30, -0.5, 0), west and down
CAMERA = [10, 20, 30, 0, -S30, C30, 0, C30, S30, -1, 0, 0]
# camera-to-world in OpenCV axes (x right, y down, z forward) is R diag(1, -1, -1)
# = rotY(90) rotX(150): q = qY(90) * qX(150) = (0, s45, 0, c45) * (s75, 0, 0, c75)
# = (c45 s75, c45 c75, -c45 s75, c45 c75) in x, y, z, w (Hamilton product; w > 0)
Q = [0.6830127, 0.1830127, -0.6830127, 0.1830127]

F64 = pa.list_(pa.float64())
ALIGNED = pa.table({
    "character.root.cframe": pa.array([[1, 2, 3, *YAW_30], [0, 5, 0, *LEVEL],
                                       [4, 0, -4, *YAW_180], None], F64),
    "character.root.velocity": pa.array([[3, -4, 4], [0, -20, 0], [6, 0, -8], None], F64),
    "camera.cframe": pa.array([CAMERA, CAMERA, CAMERA, None], F64),
    "camera.fov_y": pa.array([70.0, 70.0, 55.0, None]),
    # row 1 falls, row 2 stands on Air, row 3 has no character
    "character.humanoid.state": pa.array(["Running", "Freefall", "Running", None]),
    "character.humanoid.floor_material": pa.array(["Plastic", "Plastic", "Air", None]),
    "inputs.keys": pa.array([["W", "LeftShift", "Up"],
                             ["A", "S", "D", "Space", "LeftControl", "E", "Q", "R", "F",
                              "Down", "Left", "Right", "Tab"], [], None], pa.list_(pa.string())),
    "inputs.mouse_buttons": pa.array([["MouseButton2"], ["MouseButton1"], None, []],
                                     pa.list_(pa.string())),
    "inputs.mouse_delta": pa.array([[-3, 2], None, [0.5, -0.5], None], F64),
    "inputs.gamepad.thumbstick1": pa.array([[0.25, -0.5], None, None, None], F64),
    "inputs.gamepad.thumbstick2": pa.array([[-0.75, 1.0], None, None, None], F64),
    "inputs.gamepad.trigger_left": pa.array([0.2, None, None, None]),
    "inputs.gamepad.trigger_right": pa.array([0.9, None, None, None]),
})


def test_state_vector_of_each_row_by_the_documented_layout():
    state = state_vectors(ALIGNED)
    assert state.dtype == np.float32 and state.shape == (4, len(STATE_NAMES))
    expected = [
        # root xyz, velocity, flat look (x, z), camera xyz, camera quat xyzw, fov_y,
        # grounded, horizontal speed hypot(vx, vz)
        [1, 2, 3, 3, -4, 4, -0.5, -C30, 10, 20, 30, *Q, 70, 1, 5],
        [0, 5, 0, 0, -20, 0, 0, -1, 10, 20, 30, *Q, 70, 0, 0],  # airborne state
        [4, 0, -4, 6, 0, -8, 0, 1, 10, 20, 30, *Q, 55, 0, 10],  # standing on Air
        [0] * 18,  # no character and no camera: every value missing, so 0, and not grounded
    ]
    np.testing.assert_allclose(state, expected, atol=1e-6)


def test_state_look_and_speed_follow_the_names():
    """Spot checks by name, so a reordering of STATE_NAMES against the columns shows."""
    state = dict(zip(STATE_NAMES, state_vectors(ALIGNED)[0], strict=True))
    assert (state["root.look.x"], state["root.look.z"]) == (-0.5, np.float32(-C30))
    assert state["speed"] == 5 and state["grounded"] == 1 and state["camera.fov_y"] == 70


def test_action_vector_of_each_row_by_the_documented_layout():
    action = action_vectors(ALIGNED)
    assert action.dtype == np.float32 and action.shape == (4, len(ACTION_NAMES))
    expected = [
        # W A S D Space LeftShift LeftControl E Q R F Up Down Left Right, mouse 1 2,
        # mouse dx dy, gamepad lx ly rx ry lt rt
        [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1,
         -3, 2, 0.25, -0.5, -0.75, 1, 0.2, 0.9],
        [0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, *[0] * 8],  # Tab has no bit
        [*[0] * 17, 0.5, -0.5, *[0] * 6],
        [0] * 25,
    ]
    np.testing.assert_allclose(action, expected, atol=1e-6)
    row = dict(zip(ACTION_NAMES, action[0], strict=True))
    assert (row["key.LeftShift"], row["mouse.button2"], row["gamepad.rt"]) == (1, 1,
                                                                               np.float32(0.9))
