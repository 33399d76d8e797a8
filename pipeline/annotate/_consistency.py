"""A rule-based check of a caption against the true state of its frame.

A model caption is flagged when it says something the state contradicts:
- the character jumps / is in the air while the state says it is grounded;
- it moves in a camera-relative direction the state's `move_dir_cam` does not contain;
- it moves while the state says it is stopped, or stands still while it moves.
Negated phrases ("not jumping", "isn't moving") are not claims and are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.annotate._inputs import FrameLabel

STOPPED_SPEED = 0.5   # studs/s: below this the character counts as stopped
MOVING_SPEED = 2.0    # studs/s: above this "standing still" is a contradiction

_NEGATION = re.compile(r"\b(not|no|never|without|isn't|isnt|aren't|doesn't|nor)\W+(\w+\W+){0,2}$")
_AIRBORNE = re.compile(r"\b(jump\w*|leap\w*|in the air|mid-?air|airborne|falling|hopp\w*)\b")
_MOVING = re.compile(r"\b(walk\w*|run\w*|mov\w*|strafe\w*|strafing|sprint\w*|jogg\w*)\b")
_STILL = re.compile(r"\b(standing still|stands still|stationary|idle|stopped|motionless)\b")
_DIRECTION = re.compile(
    r"\b(?:walk|run|mov|strafe|strafing|head|go|step|sprint|jog)\w*\s+(?:\w+\s+){0,2}?"
    r"(forwards?|backwards?|back|left|right|away from the camera|toward(?:s)? the camera)\b")
_CANONICAL = {"forward": "forward", "forwards": "forward", "backward": "back",
              "backwards": "back", "back": "back", "left": "left", "right": "right",
              "away from the camera": "forward", "toward the camera": "back",
              "towards the camera": "back"}


@dataclass(frozen=True)
class Consistency:
    """The verdict: `consistent` is False when any rule fired; `reasons` say which."""

    consistent: bool
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def _claims(pattern: re.Pattern[str], text: str) -> list[re.Match[str]]:
    """Matches of `pattern` in `text` not preceded by a negation."""
    return [m for m in pattern.finditer(text) if not _NEGATION.search(text[:m.start()])]


def check_caption(caption: str, label: FrameLabel) -> Consistency:
    """Check one caption against the true state of its frame."""
    text = caption.lower()
    reasons = []
    airborne = _claims(_AIRBORNE, text)
    if label.grounded and airborne:
        reasons.append(f"says '{airborne[0].group(0)}' but the character is grounded "
                       f"(state {label.humanoid_state})")
    stopped = label.speed < STOPPED_SPEED or label.move_dir_cam == "none"
    moving = _claims(_MOVING, text)
    if stopped and moving:
        reasons.append(f"says '{moving[0].group(0)}' but the character is stopped "
                       f"(speed {label.speed:.1f} studs/s)")
    still = _claims(_STILL, text)
    if still and label.speed > MOVING_SPEED:
        reasons.append(f"says '{still[0].group(0)}' but the character moves at "
                       f"{label.speed:.1f} studs/s")
    if not stopped:
        allowed = set(label.move_dir_cam.split("-"))
        for match in _claims(_DIRECTION, text):
            said = _CANONICAL[match.group(1)]
            if said not in allowed:
                reasons.append(f"says it moves {said} relative to the camera but it moves "
                               f"{label.move_dir_cam}")
                break
    return Consistency(consistent=not reasons, reasons=tuple(reasons))
