"""The fixed-length `observation.state` and `action` vectors every format exports.

Names are part of the dataset (LeRobot's info.json lists them); change them only with a
new format version. Missing values (no character, no gamepad) are 0.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.camera import extrinsics, quat_xyzw
from pipeline.labels._events import airborne_mask
from pipeline.labels._inputs import scalars, string_lists, strings, vectors

STATE_NAMES = (
    "root.x", "root.y", "root.z", "root.vx", "root.vy", "root.vz",
    "root.look.x", "root.look.z",
    "camera.x", "camera.y", "camera.z",
    "camera.qx", "camera.qy", "camera.qz", "camera.qw",
    "camera.fov_y", "grounded", "speed")

ACTION_KEYS = ("W", "A", "S", "D", "Space", "LeftShift", "LeftControl", "E", "Q", "R", "F",
               "Up", "Down", "Left", "Right")
ACTION_NAMES = (
    *(f"key.{k}" for k in ACTION_KEYS), "mouse.button1", "mouse.button2",
    "mouse.dx", "mouse.dy",
    "gamepad.lx", "gamepad.ly", "gamepad.rx", "gamepad.ry", "gamepad.lt", "gamepad.rt")

# the aligned columns the two functions below read
ALIGNED_COLUMNS = (
    "character.root.cframe", "character.root.velocity", "camera.cframe",
    "character.humanoid.state", "character.humanoid.floor_material", "camera.fov_y",
    "inputs.keys", "inputs.mouse_buttons", "inputs.mouse_delta",
    "inputs.gamepad.thumbstick1", "inputs.gamepad.thumbstick2",
    "inputs.gamepad.trigger_left", "inputs.gamepad.trigger_right")


def state_vectors(aligned: pa.Table) -> np.ndarray:
    """(n, len(STATE_NAMES)) float32 from aligned rows."""
    root = vectors(aligned, "character.root.cframe", 12)
    velocity = vectors(aligned, "character.root.velocity", 3)
    cam = vectors(aligned, "camera.cframe", 12)
    quat = quat_xyzw(np.swapaxes(extrinsics(cam)[:, :3, :3], -1, -2))
    airborne = airborne_mask(strings(aligned, "character.humanoid.state"),
                             strings(aligned, "character.humanoid.floor_material"))
    has_root = ~np.isnan(root[:, 0])
    out = np.column_stack([
        root[:, :3], velocity, -root[:, 5], -root[:, 11], cam[:, :3], quat,
        scalars(aligned, "camera.fov_y"), (has_root & ~airborne).astype(float),
        np.hypot(velocity[:, 0], velocity[:, 2])])
    return np.nan_to_num(out).astype(np.float32)


def action_vectors(aligned: pa.Table) -> np.ndarray:
    """(n, len(ACTION_NAMES)) float32 from aligned rows: key bits, mouse, gamepad."""
    keys = string_lists(aligned, "inputs.keys")
    buttons = string_lists(aligned, "inputs.mouse_buttons")
    n = aligned.num_rows
    bits = np.array([[k in held for k in ACTION_KEYS] for held in keys], float).reshape(n, -1)
    mouse = np.array([["MouseButton1" in b, "MouseButton2" in b] for b in buttons],
                     float).reshape(n, 2)
    out = np.column_stack([
        bits, mouse, vectors(aligned, "inputs.mouse_delta", 2),
        vectors(aligned, "inputs.gamepad.thumbstick1", 2),
        vectors(aligned, "inputs.gamepad.thumbstick2", 2),
        scalars(aligned, "inputs.gamepad.trigger_left"),
        scalars(aligned, "inputs.gamepad.trigger_right")])
    return np.nan_to_num(out).astype(np.float32)
