"""A deterministic sentence describing the true state of frames N-1 and N.

Built from labels only (keys, movement, ground contact, camera turn), so the same state
always gives the same words, e.g. "Holding W and D, the character runs forward-right at
14.2 studs/s; it leaves the ground at frame 31; the camera turns left at 40 deg/s."
"""

from __future__ import annotations

import numpy as np

CAMERA_TURN = 20.0  # deg/s of camera yaw worth mentioning


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _motion_phrase(direction: str, speed: float, airborne: bool) -> str:
    if direction == "none":
        return "the character is in the air" if airborne else "the character stands still"
    verb = "moves" if airborne else ("walks" if speed < 8.0 else "runs")
    return f"the character {verb} {direction} at {speed:.1f} studs/s"


def captions(frame_index: np.ndarray, has_state: np.ndarray, keys: list[list[str]],
             direction: np.ndarray, speed: np.ndarray, airborne: np.ndarray,
             camera_yaw_rate: np.ndarray, has_character: np.ndarray) -> list[str]:
    """One caption per frame, describing frame N and what changed since frame N-1."""
    out: list[str] = []
    for i in range(len(frame_index)):
        if not has_state[i]:
            out.append("")
            continue
        motion = (_motion_phrase(str(direction[i]), float(speed[i]), bool(airborne[i]))
                  if has_character[i] else "no character is present")
        # with keys, they lead ("Holding W, the character runs ..."); without, the motion
        # leads and the keys follow, so no sentence reads as if no keys made it run
        parts = ([f"Holding {_join(sorted(keys[i]))}, {motion}"] if keys[i] else
                 [motion[0].upper() + motion[1:], "no keys are held"])
        if i > 0 and has_state[i - 1] and has_character[i] and has_character[i - 1]:
            if airborne[i] and not airborne[i - 1]:
                parts.append(f"it leaves the ground at frame {int(frame_index[i])}")
            elif airborne[i - 1] and not airborne[i]:
                parts.append(f"it lands at frame {int(frame_index[i])}")
            if direction[i] != "none" and direction[i - 1] == "none":
                parts.append(f"it starts moving at frame {int(frame_index[i])}")
            elif direction[i] == "none" and direction[i - 1] != "none":
                parts.append(f"it stops at frame {int(frame_index[i])}")
        if i > 0:
            pressed = sorted(set(keys[i]) - set(keys[i - 1]))
            released = sorted(set(keys[i - 1]) - set(keys[i]))
            if pressed:
                parts.append(f"{_join(pressed)} pressed")
            if released:
                parts.append(f"{_join(released)} released")
        rate = float(np.degrees(camera_yaw_rate[i]))
        if abs(rate) >= CAMERA_TURN:
            side = "left" if rate > 0 else "right"
            parts.append(f"the camera turns {side} at {abs(rate):.0f} deg/s")
        out.append("; ".join(parts) + ".")
    return out
