"""The demo world: a baseplate, a few tagged props (one moving) and a scripted character.

Everything is a pure function of the physics tick, so two runs produce the same states:
the script says which keys are held and how the camera orbits at each moment; movement is
camera-relative like Roblox's default controls (W forward, S back, A/D left/right, Space
jumps, LeftShift runs); gravity and the jump impulse use Roblox's defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from pipeline import camera as cam

TICK_HZ = 60
GRAVITY = 196.2  # studs/s^2, Workspace.Gravity
JUMP_POWER = 50.0  # studs/s, Humanoid.JumpPower
WALK_SPEED = 16.0
RUN_SPEED = 26.0
ACCELERATION = 12.0  # 1/s: horizontal velocity approaches its target at this rate
TURN_RATE = 10.0  # rad/s: how fast the character turns to face its movement
HIP_HEIGHT = 3.0  # root part centre above the ground when standing
LANDED_SECONDS = 0.1
ROOT_SIZE = (2.0, 2.0, 1.0)
BODY_SIZE = (4.0, 5.0, 1.5)
BODY_DROP = 0.5  # the body box centre sits this far below the root part centre
CAMERA_DISTANCE = 16.0
CAMERA_HEIGHT = 6.0
FOV_Y = 70.0
MOUSE_PX_PER_RAD = 200.0  # right-drag to orbit: mouse delta per radian of camera yaw


@dataclass(frozen=True)
class Prop:
    """A tagged part: a box with a name, a colour (BGR) and an optional sway along x."""

    id: str
    name: str
    centre: tuple[float, float, float]
    size: tuple[float, float, float]
    colour: tuple[int, int, int]
    sway: float = 0.0  # studs of amplitude
    sway_period: float = 4.0  # seconds

    def position(self, t: float) -> np.ndarray:
        w = 2 * math.pi / self.sway_period
        return np.array(self.centre) + np.array([self.sway * math.sin(w * t), 0.0, 0.0])

    def velocity(self, t: float) -> np.ndarray:
        w = 2 * math.pi / self.sway_period
        return np.array([self.sway * w * math.cos(w * t), 0.0, 0.0])


PROPS = (
    Prop("Workspace.Props.Crate", "Crate", (-4.0, 2.0, -26.0), (4.0, 4.0, 4.0), (40, 110, 180)),
    Prop("Workspace.Props.Tower", "Tower", (-30.0, 7.0, 10.0), (5.0, 14.0, 5.0), (150, 150, 150)),
    Prop("Workspace.Props.Wall", "Wall", (-52.0, 3.0, -36.0), (20.0, 6.0, 2.0), (70, 70, 160)),
    Prop("Workspace.Props.Cart", "Cart", (-50.0, 1.5, 2.0), (6.0, 3.0, 4.0), (60, 160, 60),
         sway=8.0, sway_period=5.0),
)

# (start second, keys held, camera orbit rate in rad/s); repeats every SCRIPT_SECONDS.
# Holding W while the camera orbits walks a circle around the props.
SCRIPT = (
    (0.0, (), 0.3),
    (0.8, ("W",), 0.5),
    (2.4, ("W", "D"), 0.5),
    (3.2, ("W", "LeftShift"), 0.6),
    (4.4, ("W", "LeftShift", "Space"), 0.6),
    (4.6, ("W", "LeftShift"), 0.6),
    (5.8, (), 0.0),
    (6.6, ("Space",), 0.0),
    (6.8, (), -0.8),
    (7.6, ("A",), 0.0),
    (8.6, ("S",), 0.0),
    (9.4, ("W", "Space"), 0.5),
    (9.6, ("W",), 0.5),
)
SCRIPT_SECONDS = 10.8


def script_at(t: float) -> tuple[tuple[str, ...], float]:
    """Keys held and the camera orbit rate at game time `t`."""
    local = t % SCRIPT_SECONDS
    keys, orbit = (), 0.0
    for start, step_keys, step_orbit in SCRIPT:
        if local >= start:
            keys, orbit = step_keys, step_orbit
    return keys, orbit


@dataclass(frozen=True)
class CharacterState:
    """The character and camera after a physics tick (world units, radians)."""

    tick: int
    position: tuple[float, float, float]  # root part centre
    velocity: tuple[float, float, float]
    yaw: float  # facing: the root's look vector is (-sin yaw, 0, -cos yaw)
    yaw_rate: float
    camera_yaw: float  # the camera sits at position + (sin, ., cos) * distance
    camera_yaw_rate: float
    state: str  # Running, Jumping, Freefall, Landed
    landed_at: float | None
    keys: tuple[str, ...]
    move_direction: tuple[float, float, float]

    @property
    def t(self) -> float:
        return self.tick / TICK_HZ

    @property
    def grounded(self) -> bool:
        return self.position[1] <= HIP_HEIGHT + 1e-9 and self.velocity[1] <= 0


def initial_state() -> CharacterState:
    return CharacterState(0, (0.0, HIP_HEIGHT, 0.0), (0.0, 0.0, 0.0), 0.0, 0.0, 0.0, 0.0,
                          "Running", None, (), (0.0, 0.0, 0.0))


def camera_cframe(state: CharacterState) -> np.ndarray:
    """The follow camera: behind and above the character, looking at its upper body."""
    x, y, z = state.position
    eye = (x + CAMERA_DISTANCE * math.sin(state.camera_yaw), y + CAMERA_HEIGHT,
           z + CAMERA_DISTANCE * math.cos(state.camera_yaw))
    return cam.look_at(eye, (x, y + 1.5, z))


def move_direction(keys: tuple[str, ...], camera_yaw: float) -> np.ndarray:
    """Humanoid.MoveDirection from WASD relative to the camera, flattened to the ground."""
    forward = np.array([-math.sin(camera_yaw), 0.0, -math.cos(camera_yaw)])
    right = np.array([math.cos(camera_yaw), 0.0, -math.sin(camera_yaw)])
    wish = (("W" in keys) - ("S" in keys)) * forward + (("D" in keys) - ("A" in keys)) * right
    norm = float(np.linalg.norm(wish))
    return wish / norm if norm > 0 else np.zeros(3)


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def step(state: CharacterState) -> CharacterState:
    """One physics tick of 1/TICK_HZ seconds."""
    dt = 1.0 / TICK_HZ
    t = (state.tick + 1) / TICK_HZ
    keys, orbit = script_at(t)
    camera_yaw = state.camera_yaw + orbit * dt
    direction = move_direction(keys, camera_yaw)
    speed = RUN_SPEED if "LeftShift" in keys else WALK_SPEED
    pos, vel = np.array(state.position), np.array(state.velocity)
    blend = 1.0 - math.exp(-ACCELERATION * dt)
    vel[[0, 2]] += (direction[[0, 2]] * speed - vel[[0, 2]]) * blend
    grounded = state.grounded
    jumped = grounded and "Space" in keys
    if jumped:
        vel[1] = JUMP_POWER
    if not grounded or jumped:
        vel[1] -= GRAVITY * dt
    pos = pos + vel * dt
    landed_at = state.landed_at
    if pos[1] <= HIP_HEIGHT:
        if not grounded:
            landed_at = t
        pos[1], vel[1] = HIP_HEIGHT, 0.0
    yaw, yaw_rate = state.yaw, 0.0
    if np.linalg.norm(direction) > 0:
        want = math.atan2(-direction[0], -direction[2])
        turn = max(-TURN_RATE * dt, min(TURN_RATE * dt, _wrap(want - yaw)))
        yaw, yaw_rate = _wrap(yaw + turn), turn / dt
    if pos[1] > HIP_HEIGHT:
        humanoid = "Jumping" if vel[1] > 0 else "Freefall"
    elif landed_at is not None and t - landed_at < LANDED_SECONDS:
        humanoid = "Landed"
    else:
        humanoid = "Running"
    return replace(state, tick=state.tick + 1, position=tuple(pos.tolist()),
                   velocity=tuple(vel.tolist()), yaw=yaw, yaw_rate=yaw_rate,
                   camera_yaw=camera_yaw, camera_yaw_rate=orbit, state=humanoid,
                   landed_at=landed_at, keys=keys, move_direction=tuple(direction.tolist()))


def root_cframe(state: CharacterState) -> np.ndarray:
    """The root part's CFrame components: at its position, facing its yaw."""
    c, s = math.cos(state.yaw), math.sin(state.yaw)
    rotation = [c, 0.0, s, 0.0, 1.0, 0.0, -s, 0.0, c]
    return np.array([*state.position, *rotation])
