"""What a caption is asked: which frames get one, and the text of their prompt.

A caption is made per merged event (events whose frame ranges overlap or nearly touch form
one group, captioned at its last frame) and once per `every_s`-second window where no event
caption is near. The prompt holds two images, frames N-1 and N, each followed by its exact state;
a frame without state gets no state line (the model is told nothing is known), never
invented defaults. Event lines keep their details: which key, which direction, whether
the character or the camera turned, and by how many degrees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.annotate._inputs import FrameLabel, LabelEvent

ANSWER_FIELDS = ("direction", "motion", "airborne", "camera", "caption")
INSTRUCTION = (
    "Answer with one JSON object and nothing else: "
    '{"direction": one of forward, back, left, right, forward-left, forward-right, back-left, '
    'back-right, none (camera-relative movement of the character), "motion": "moving" or '
    '"stopped", "airborne": true or false, "camera": "still", "turning left" or '
    '"turning right", "caption": one or two sentences on what the player character does '
    "from the first image to the second}. Use the true state; do not contradict it.")
STATE_FREE = "No game state is known for this frame; describe only what the images show."


@dataclass(frozen=True)
class CaptionSlot:
    """A frame to caption and why: the events of its group, or a periodic caption."""

    frame_index: int
    events: tuple[LabelEvent, ...]


def merge_events(events: Sequence[LabelEvent], gap: int) -> list[list[LabelEvent]]:
    """Groups of events whose frame ranges overlap or lie within `gap` frames."""
    groups: list[list[LabelEvent]] = []
    end = None
    for event in sorted(events, key=lambda e: (e.start_frame, e.end_frame, e.kind)):
        if groups and end is not None and event.start_frame <= end + gap:
            groups[-1].append(event)
            end = max(end, event.end_frame)
        else:
            groups.append([event])
            end = event.end_frame
    return groups


def caption_slots(times: Mapping[int, float], events: Sequence[LabelEvent], every_s: float,
                  gap: int, before: float | None = None,
                  clock: Mapping[int, float] | None = None) -> list[CaptionSlot]:
    """Slots among the frames of `times` (frame index -> t): one per merged event group at
    its last frame (the group belongs to the shard holding that frame), and the first frame
    of every `every_s`-second window of the session clock (`before`: t of the frame before
    these, if any) at least `every_s / 2` from any event caption (`clock`: t of every frame
    of the session). Both rules depend only on the session, so shard bounds never add or
    drop a caption."""
    clock = times if clock is None else clock
    slots: dict[int, CaptionSlot] = {}
    taken = []
    for group in merge_events(events, gap):
        last = max(e.end_frame for e in group)
        if last in times:
            slots[last] = CaptionSlot(last, tuple(group))
        if last in clock:
            taken.append(clock[last])
    window = None if before is None else int(before // every_s)
    for index in sorted(times):
        current = int(times[index] // every_s)
        if current == window:
            continue
        window = current
        if all(abs(times[index] - t) >= every_s / 2 for t in taken):
            slots[index] = CaptionSlot(index, ())
    return [slots[i] for i in sorted(slots)]


def describe_state(label: FrameLabel | None) -> str:
    """One line of a frame's exact state, or the state-free line."""
    if label is None or not label.has_state:
        return STATE_FREE
    on_screen = ", ".join(o.name for o in label.objects if o.on_screen) or "nothing tracked"
    keys = ", ".join(label.keys) or "none"
    return (f"t={label.t:.3f} s: humanoid {label.humanoid_state}, "
            f"{'grounded' if label.grounded else 'in the air'}, speed {label.speed:.1f} "
            f"studs/s, moving {label.move_dir_cam} relative to the camera, keys held: {keys}; "
            f"on screen: {on_screen}")


def describe_event(event: LabelEvent) -> str:
    """An event with its details, e.g. 'camera turns left by 95 degrees (frames 10-14)'."""
    span = f"(frames {event.start_frame}-{event.end_frame})"
    if event.kind == "turn":
        subject = event.detail("subject", "character")
        degrees = event.detail("degrees")
        by = f" by {float(degrees):.0f} degrees" if degrees is not None else ""
        return f"{subject} turns {event.detail('direction', '?')}{by} {span}"
    if event.kind in ("press", "release"):
        return f"key {event.detail('key', '?')} {event.kind}d {span}".replace("pressd", "pressed")
    return f"{event.kind.replace('_', ' ')} {span}"


def build_prompt(context: str, previous: FrameLabel | None, current: FrameLabel | None,
                 events: Sequence[LabelEvent]) -> list[dict]:
    """The chat message content: context, image N-1 with its state, image N with its state,
    the events and the answer format."""
    content: list[dict] = []
    if context:
        content.append({"type": "text", "text": f"Context: {context}\n"})
    content += [{"type": "text", "text": "Frame N-1:"}, {"type": "image"},
                {"type": "text", "text": f"State of frame N-1: {describe_state(previous)}\n"
                                         "Frame N:"},
                {"type": "image"},
                {"type": "text", "text": f"State of frame N: {describe_state(current)}\n"}]
    if events:
        content.append({"type": "text", "text": "Events: "
                        + "; ".join(describe_event(e) for e in events) + "\n"})
    content.append({"type": "text", "text": INSTRUCTION})
    return [{"role": "user", "content": content}]


def prompt_text(message: list[dict]) -> str:
    """The text parts of a message (what is stored beside the caption)."""
    return "".join(c["text"] if c["type"] == "text" else "<image>"
                   for m in message for c in m["content"])
