"""Events with frame ranges, detected from per-frame state with hysteresis.

Each detector works on whole arrays: a boolean condition becomes runs of frames (gaps
shorter than `min_gap` closed, runs shorter than `min_frames` dropped) so single-frame
noise neither starts nor ends an event. Frame numbers are `frame_index` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

AIRBORNE_STATES = frozenset({"Jumping", "Freefall", "FallingDown", "Flying"})
START_MOVING = 1.0  # studs/s: horizontal speed that starts a movement
STOP_MOVING = 0.5  # studs/s: speed under which a movement ends
TURN_RATE = np.radians(90.0)  # rad/s: yaw rate that counts as a turn
MIN_FRAMES = 2  # a condition must hold this many frames to count


@dataclass(frozen=True)
class Event:
    """One event: what happened, over which frames, with details."""

    kind: str
    start: int  # row of the first frame
    end: int  # row of the last frame (inclusive)
    details: dict[str, Any] = field(default_factory=dict)

    def record(self, frame_index: np.ndarray, t: np.ndarray) -> dict[str, Any]:
        """The JSON-ready label_events.jsonl record."""
        return {"kind": self.kind, "start_frame": int(frame_index[self.start]),
                "end_frame": int(frame_index[self.end]), "start_t": float(t[self.start]),
                "end_t": float(t[self.end]), **self.details}


def runs(mask: np.ndarray, *, min_frames: int = MIN_FRAMES, min_gap: int = MIN_FRAMES
         ) -> list[tuple[int, int]]:
    """Inclusive (start, end) row ranges where `mask` holds, after closing gaps shorter than
    `min_gap` and dropping runs shorter than `min_frames`."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.diff(padded)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    merged: list[list[int]] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if merged and s - merged[-1][1] - 1 < min_gap:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged if e - s + 1 >= min_frames]


def hysteresis(value: np.ndarray, on: float, off: float) -> np.ndarray:
    """True from where `value` rises above `on` until it falls below `off` (NaN holds)."""
    state = np.full(len(value), np.nan)
    state[value > on] = 1.0
    state[value < off] = 0.0
    if len(state) and np.isnan(state[0]):
        state[0] = 0.0
    filled = np.where(np.isnan(state), 0, np.arange(len(state)))
    np.maximum.accumulate(filled, out=filled)
    return state[filled] > 0.5


def airborne_mask(state: np.ndarray, floor_material: np.ndarray) -> np.ndarray:
    """Airborne when the humanoid is in an airborne state or stands on Air."""
    return np.isin(state, list(AIRBORNE_STATES)) | (floor_material == "Air")


def jump_events(state: np.ndarray, airborne: np.ndarray) -> list[Event]:
    """jump (the Jumping frames), airborne (the whole flight) and land (first frame down)."""
    out: list[Event] = []
    for s, e in runs(airborne):
        jumping = np.flatnonzero(state[s:e + 1] == "Jumping")
        if len(jumping):
            out.append(Event("jump", s, s + int(jumping[-1])))
        out.append(Event("airborne", s, e, {"frames": e - s + 1}))
        if e + 1 < len(state):
            out.append(Event("land", e + 1, e + 1))
    return out


def moving_events(speed: np.ndarray) -> list[Event]:
    """start_moving / stop_moving at the edges of movement runs (speed with hysteresis)."""
    out: list[Event] = []
    for s, e in runs(hysteresis(speed, START_MOVING, STOP_MOVING)):
        if s > 0:
            out.append(Event("start_moving", s, s))
        if e + 1 < len(speed):
            out.append(Event("stop_moving", e + 1, e + 1))
    return out


def turn_events(heading: np.ndarray, t: np.ndarray, subject: str) -> list[Event]:
    """turn: runs where |yaw rate| exceeds TURN_RATE in one direction."""
    if len(t) < 2:
        return []
    rate = np.zeros(len(t))
    rate[1:] = np.diff(heading) / np.diff(t)
    out: list[Event] = []
    for sign, side in ((1.0, "left"), (-1.0, "right")):
        for s, e in runs(np.nan_to_num(sign * rate) > TURN_RATE):
            start = max(s - 1, 0)  # the turn begins at the frame before the first fast step
            angle = float(np.degrees(abs(heading[e] - heading[start])))
            out.append(Event("turn", start, e, {"subject": subject, "direction": side,
                                                "degrees": round(angle, 3)}))
    return out


def key_events(keys: list[list[str]]) -> list[Event]:
    """press (from the first held frame to the last) and release (the first frame up)."""
    out: list[Event] = []
    names = sorted({k for frame in keys for k in frame})
    for name in names:
        held = np.fromiter((name in frame for frame in keys), bool, len(keys))
        for s, e in runs(held, min_frames=1, min_gap=1):
            out.append(Event("press", s, e, {"key": name}))
            if e + 1 < len(keys):
                out.append(Event("release", e + 1, e + 1, {"key": name}))
    return out


def sort_events(events: list[Event]) -> list[Event]:
    """Events in a deterministic order: by start, kind, end, then details."""
    return sorted(events, key=lambda ev: (ev.start, ev.kind, ev.end,
                                          sorted((k, str(v)) for k, v in ev.details.items())))
