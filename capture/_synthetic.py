"""A plausible synthetic play session: a character running a figure of eight, jumping now
and then, watched by a camera orbiting behind it.

Every sample is a valid wire sample (`capture._wire.Sample`) whose derived values agree with
each other (velocity is the derivative of position, the root projection is the true pinhole
projection through the camera), so tests and demos can check labels against known truth.
"""

from __future__ import annotations

import math
from typing import Any

VIEWPORT = (1280.0, 720.0)
FOV_Y = 70.0
WALK_SPEED = 16.0
_LOOP = 40.0  # studs: half-width of the figure of eight
_PERIOD = 2 * math.pi * _LOOP / WALK_SPEED * 1.5  # seconds per figure of eight (roughly)
_JUMP_EVERY = 4.0  # seconds
_JUMP_TIME = 0.8  # seconds airborne
_JUMP_HEIGHT = 7.2  # studs at the apex
_GROUND_Y = 3.0  # root part centre height when standing


def _sub(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float]:
    return a[0] - b[0], a[1] - b[1], a[2] - b[2]


def _cross(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float]:
    return a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]


def _unit(a: tuple[float, ...]) -> tuple[float, float, float]:
    n = math.sqrt(a[0] ** 2 + a[1] ** 2 + a[2] ** 2) or 1.0
    return a[0] / n, a[1] / n, a[2] / n


def look_at(eye: tuple[float, ...], target: tuple[float, ...]) -> list[float]:
    """`CFrame.lookAt(eye, target):GetComponents()` (up = +Y): the -Z axis faces the target."""
    back = _unit(_sub(eye, target))
    right = _unit(_cross((0.0, 1.0, 0.0), back))
    up = _cross(back, right)
    return [eye[0], eye[1], eye[2],
            right[0], up[0], back[0],
            right[1], up[1], back[1],
            right[2], up[2], back[2]]


def project(cframe: list[float], point: tuple[float, ...], fov_y: float,
            viewport: tuple[float, float]) -> list[float]:
    """Pinhole projection like `Camera:WorldToViewportPoint`: [u, v, depth, on_screen]."""
    d = _sub(point, cframe[:3])
    x = d[0] * cframe[3] + d[1] * cframe[6] + d[2] * cframe[9]
    y = d[0] * cframe[4] + d[1] * cframe[7] + d[2] * cframe[10]
    z = d[0] * cframe[5] + d[1] * cframe[8] + d[2] * cframe[11]
    depth = -z
    f = (viewport[1] / 2) / math.tan(math.radians(fov_y) / 2)
    scale = f / depth if abs(depth) > 1e-9 else 0.0
    u = viewport[0] / 2 + x * scale
    v = viewport[1] / 2 - y * scale
    on_screen = depth > 0 and 0 <= u <= viewport[0] and 0 <= v <= viewport[1]
    return [u, v, depth, 1.0 if on_screen else 0.0]


def _path(t: float) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Ground position and velocity on the figure of eight at time t."""
    w = 2 * math.pi / _PERIOD
    x, z = _LOOP * math.sin(w * t), _LOOP / 2 * math.sin(2 * w * t)
    vx, vz = _LOOP * w * math.cos(w * t), _LOOP * w * math.cos(2 * w * t)
    return (x, 0.0, z), (vx, 0.0, vz)


def _jump(t: float) -> tuple[float, float, str]:
    """Height above ground, vertical velocity and humanoid state at time t."""
    phase = t % _JUMP_EVERY - (_JUMP_EVERY - _JUMP_TIME)
    if phase < 0:
        return 0.0, 0.0, "Running"
    g = 8 * _JUMP_HEIGHT / _JUMP_TIME**2
    v0 = g * _JUMP_TIME / 2
    return v0 * phase - g * phase**2 / 2, v0 - g * phase, "Jumping" if phase < 0.1 else "Freefall"


def synthetic_sample(seq: int, t: float, *, wall_ms: int | None = None,
                     dt: float = 1 / 60) -> dict[str, Any]:
    """The wire sample (a JSON-ready dict) at client time `t` seconds."""
    ground, vel = _path(t)
    height, vy, state = _jump(t)
    root_pos = (ground[0], _GROUND_Y + height, ground[2])
    heading = _unit(vel)
    root_cf = look_at(root_pos, (root_pos[0] + heading[0], root_pos[1], root_pos[2] + heading[2]))
    orbit = 0.35 * math.sin(t / 3)
    cam_dir = (-heading[0] * math.cos(orbit) + heading[2] * math.sin(orbit), 0.0,
               -heading[2] * math.cos(orbit) - heading[0] * math.sin(orbit))
    eye = (root_pos[0] + 14 * cam_dir[0], root_pos[1] + 6.0, root_pos[2] + 14 * cam_dir[2])
    cam_cf = look_at(eye, root_pos)
    speed = math.hypot(vel[0], vel[2]) or 1.0
    airborne = height > 0
    crate = (10.0, 1.0, -6.0)
    identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    return {
        "seq": seq, "t": t, "dt": dt, "wall_ms": wall_ms,
        "character": {
            "humanoid": {"state": state, "move_direction": [vel[0] / speed, 0.0, vel[2] / speed],
                         "walk_speed": WALK_SPEED, "jump": state == "Jumping",
                         "floor_material": "Air" if airborne else "Grass", "health": 100.0},
            "root": {"cframe": root_cf, "velocity": [vel[0], vy, vel[2]],
                     "angular_velocity": [0.0, 0.0, 0.0], "size": [2.0, 2.0, 1.0]},
            "bbox": {"cframe": [root_pos[0], root_pos[1] - 0.5, root_pos[2], *root_cf[3:]],
                     "size": [4.0, 5.0, 1.0]},
            "ground": {"hit": True, "point": [ground[0], 0.0, ground[2]],
                       "normal": [0.0, 1.0, 0.0], "material": "Grass",
                       "instance": "Workspace.Baseplate", "distance": _GROUND_Y + height},
        },
        "camera": {"cframe": cam_cf, "fov_y": FOV_Y, "viewport": list(VIEWPORT),
                   "focus": list(root_pos), "gui_inset": [0.0, 36.0, 0.0, 0.0],
                   "type": "Custom", "subject": "Workspace.Player.Humanoid",
                   "root_projection": project(cam_cf, root_pos, FOV_Y, VIEWPORT)},
        "inputs": {"keys": ["W", "Space"] if state == "Jumping" else ["W"],
                   "mouse_buttons": [], "mouse_position": [640.0, 360.0],
                   "mouse_delta": [0.0, 0.0]},
        "entities": [{"id": "crate-1", "name": "Crate", "tag": "STPE_Track",
                      "cframe": [*crate, *identity], "size": [2.0, 2.0, 2.0],
                      "velocity": [0.0, 0.0, 0.0],
                      "projection": project(cam_cf, crate, FOV_Y, VIEWPORT)}],
    }
