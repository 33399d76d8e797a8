"""The structured check of a caption answer against the true state of its frame.

The model answers a JSON object (`direction`, `motion`, `airborne`, `camera`, `caption`);
each field is compared with what the state says:
- `direction`: the state's camera-relative `move_dir_cam`;
- `motion`: "stopped" below 0.5 studs/s or with direction none, "moving" otherwise;
- `airborne`: not `grounded`;
- `camera`: "turning left"/"turning right" during a camera turn event, "still" otherwise.
A frame without state checks nothing. An answer that is not such an object is unusable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.annotate._inputs import MOVE_DIRECTIONS, FrameLabel, LabelEvent

STOPPED_SPEED = 0.5  # studs/s: below this the character counts as stopped
MOTIONS = ("moving", "stopped")
CAMERA = ("still", "turning left", "turning right")


@dataclass(frozen=True)
class Answer:
    """A parsed caption answer."""

    direction: str
    motion: str
    airborne: bool
    camera: str
    caption: str


@dataclass(frozen=True)
class Consistency:
    """The verdict: `consistent` is False when a field contradicts the state."""

    consistent: bool
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def parse_answer(text: str) -> Answer | None:
    """The first JSON object of `text` as an Answer (None when absent or malformed)."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    direction, motion, camera = data.get("direction"), data.get("motion"), data.get("camera")
    airborne, caption = data.get("airborne"), data.get("caption")
    if (direction not in MOVE_DIRECTIONS or motion not in MOTIONS or camera not in CAMERA
            or not isinstance(airborne, bool) or not isinstance(caption, str)
            or not caption.strip()):
        return None
    return Answer(direction, motion, airborne, camera, caption.strip())


def camera_motion(frame_index: int, events: Sequence[LabelEvent]) -> str:
    """"turning left/right" while a camera turn event covers the frame, else "still"."""
    for event in events:
        if (event.kind == "turn" and event.detail("subject") == "camera"
                and event.start_frame <= frame_index <= event.end_frame):
            return f"turning {event.detail('direction')}"
    return "still"


def expected_answer(label: FrameLabel, events: Sequence[LabelEvent]) -> dict[str, object]:
    """The field values the state implies for the frame."""
    stopped = label.speed < STOPPED_SPEED or label.move_dir_cam == "none"
    return {"direction": "none" if stopped else label.move_dir_cam,
            "motion": "stopped" if stopped else "moving",
            "airborne": not label.grounded,
            "camera": camera_motion(label.frame_index, events)}


def check_answer(answer: Answer, label: FrameLabel | None,
                 events: Sequence[LabelEvent]) -> Consistency:
    """Compare each field of `answer` with the state of its frame."""
    if label is None or not label.has_state:
        return Consistency(True, ())
    expected = expected_answer(label, events)
    reasons = tuple(f"{field} is {getattr(answer, field)!r} but the state says {value!r}"
                    for field, value in expected.items() if getattr(answer, field) != value)
    return Consistency(not reasons, reasons)
