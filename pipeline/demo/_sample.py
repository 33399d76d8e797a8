"""The wire sample the Roblox plugin would send for one state of the demo world.

Projections (`camera.root_projection`, each entity's `projection`) are the engine's own
`Camera:WorldToViewportPoint` (`pipeline.demo._engine`, written from the engine reference),
not the labels' camera model, so the labels' engine check compares two implementations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.demo._engine import EngineCamera
from pipeline.demo._world import (
    BODY_DROP,
    BODY_SIZE,
    FOV_Y,
    MOUSE_PX_PER_RAD,
    PROPS,
    ROOT_SIZE,
    RUN_SPEED,
    TICK_HZ,
    WALK_SPEED,
    CharacterState,
    camera_cframe,
    root_cframe,
)

GUI_INSET = (0.0, 36.0, 0.0, 0.0)


def viewport_projection(points: np.ndarray, camera_cf: np.ndarray,
                        viewport: tuple[int, int]) -> np.ndarray:
    """`WorldToViewportPoint` of world points (N, 3): rows of [u, v, depth, on_screen]
    (u, v = -1 behind the camera)."""
    engine = EngineCamera.of(camera_cf, FOV_Y, (float(viewport[0]), float(viewport[1])))
    return np.nan_to_num(engine.world_to_viewport_point(points), nan=-1.0)


def _vec(values: Any) -> list[float]:
    return [float(v) for v in values]


def _character(state: CharacterState) -> dict[str, Any]:
    root_cf = root_cframe(state)
    x, y, z = state.position
    airborne = not state.grounded
    body_cf = [x, y - BODY_DROP, z, *root_cf[3:]]
    return {
        "humanoid": {"state": state.state, "move_direction": _vec(state.move_direction),
                     "walk_speed": RUN_SPEED if "LeftShift" in state.keys else WALK_SPEED,
                     "jump": state.state == "Jumping", "health": 100.0,
                     "floor_material": "Air" if airborne else "Plastic"},
        "root": {"cframe": _vec(root_cf), "velocity": _vec(state.velocity),
                 "angular_velocity": [0.0, float(state.yaw_rate), 0.0],
                 "size": list(ROOT_SIZE)},
        "bbox": {"cframe": _vec(body_cf), "size": list(BODY_SIZE)},
        "ground": {"hit": True, "point": [x, 0.0, z], "normal": [0.0, 1.0, 0.0],
                   "material": "Plastic", "instance": "Workspace.Baseplate",
                   "distance": float(y)},
    }


def _entities(state: CharacterState, camera_cf: np.ndarray,
              viewport: tuple[int, int]) -> list[dict[str, Any]]:
    centres = np.array([p.position(state.t) for p in PROPS])
    projections = viewport_projection(centres, camera_cf, viewport)
    identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    return [{"id": p.id, "name": p.name, "tag": "STPE_Track",
             "cframe": [*_vec(c), *identity], "size": list(p.size),
             "velocity": _vec(p.velocity(state.t)), "projection": _vec(proj)}
            for p, c, proj in zip(PROPS, centres, projections, strict=True)]


def build_sample(state: CharacterState, *, seq: int, client_t: float, dt: float,
                 wall_ms: int, viewport: tuple[int, int]) -> dict[str, Any]:
    """The JSON-ready wire sample (`capture._wire.Sample`) for one rendered frame."""
    camera_cf = camera_cframe(state)
    root = viewport_projection(np.array([state.position]), camera_cf, viewport)[0]
    mouse_delta = [state.camera_yaw_rate / TICK_HZ * MOUSE_PX_PER_RAD, 0.0]
    orbiting = state.camera_yaw_rate != 0.0
    return {
        "seq": seq, "t": client_t, "dt": dt, "wall_ms": wall_ms,
        "character": _character(state),
        "camera": {"cframe": _vec(camera_cf), "fov_y": FOV_Y,
                   "viewport": [float(viewport[0]), float(viewport[1])],
                   "focus": _vec(state.position), "gui_inset": list(GUI_INSET),
                   "type": "Custom", "subject": "Workspace.Player.Humanoid",
                   "root_projection": _vec(root)},
        "inputs": {"keys": list(state.keys),
                   "mouse_buttons": ["MouseButton2"] if orbiting else [],
                   "mouse_position": [viewport[0] / 2, viewport[1] / 2],
                   "mouse_delta": mouse_delta},
        "entities": _entities(state, camera_cf, viewport),
    }

