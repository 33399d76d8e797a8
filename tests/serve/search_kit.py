"""Labelled sessions with a known camera motion for the search tests.

The camera of frame i has the Roblox orientation `CFrame.fromEulerAnglesYXZ(pitch, yaw_i, 0)`
(R = Ry(yaw) Rx(pitch)); its look vector -Z has heading `yaw_i` (positive turning left, as
docs/labels.md defines the caption's turns), so its yaw rate is `YAW_RATES[segment]` by
construction. The character follows `capture._synthetic`'s path (which jumps), and the
labels come from the real `stpe labels` code."""

from __future__ import annotations

import math
from pathlib import Path

from capture import Session
from capture._synthetic import FOV_Y, VIEWPORT, project, synthetic_sample
from pipeline.labels import compute_labels, write_labels
from tests.pipeline.session_kit import make_session

FPS = 30
SEGMENT = 12  # frames per constant-rate segment
YAW_RATES = (0.0, 45.0, -60.0, 20.0, 90.0)  # deg/s, one per segment
PITCH = math.radians(-20.0)


def yaw_rate_at(frame: int) -> float:
    """The camera's true yaw rate (deg/s) between frame-1 and frame (frame 0 copies 1)."""
    return YAW_RATES[max(frame - 1, 0) // SEGMENT]


def _yaw_at(frame: int) -> float:
    """Heading (rad) of frame `frame`: the integral of the segment rates."""
    return sum(math.radians(yaw_rate_at(i)) / FPS for i in range(1, frame + 1))


def _cframe(eye: tuple[float, float, float], yaw: float, pitch: float) -> list[float]:
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    rot = [[cy, sy * sp, sy * cp], [0.0, cp, -sp], [-sy, cy * sp, cy * cp]]  # Ry @ Rx
    return [*eye, *(v for row in rot for v in row)]


def turning_session(parent: Path, name: str, *, frames: int = SEGMENT * len(YAW_RATES) + 1,
                    start_t: float = 0.0, video: bool = False) -> Path:
    """A labelled session whose camera turns at the known `YAW_RATES`, frame i at i / FPS."""
    samples = []
    for i in range(frames):
        sample = synthetic_sample(i, start_t + i / FPS)
        root = sample["character"]["root"]["cframe"][:3]
        cframe = _cframe((root[0], root[1] + 6.0, root[2] + 14.0), _yaw_at(i), PITCH)
        sample["camera"]["cframe"] = cframe
        sample["camera"]["root_projection"] = project(cframe, tuple(root), FOV_Y, VIEWPORT)
        sample["entities"][0]["projection"] = project(
            cframe, tuple(sample["entities"][0]["cframe"][:3]), FOV_Y, VIEWPORT)
        samples.append(sample)
    path = make_session(parent, samples, list(range(frames)), [i / FPS for i in range(frames)],
                        size=(320, 180), scale=(0.25, 0.25), video=video, name=name)
    session = Session.open(path)
    write_labels(session, compute_labels(session))
    return path
