"""Draw one frame's labels over its video image: the root point and trail, 2D boxes, the
velocity projected into the image, the camera-vs-object motion split and a text panel.

Coordinates are captured-frame pixels in the pixel-centre convention of `pipeline.camera`;
drawing uses OpenCV fixed point (1/16 px) so a label lands where it says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from pipeline import camera as cam

SHIFT = 4
ROOT = (255, 220, 0)  # RGB
TRAIL = (255, 170, 0)
CHARACTER_BOX = (255, 80, 80)
ENTITY_BOX = (80, 255, 120)
VELOCITY = (0, 230, 255)
CAMERA_MOTION = (255, 140, 0)
OBJECT_MOTION = (120, 255, 0)
TEXT = (255, 255, 255)
PANEL = (0, 0, 0)
VELOCITY_SECONDS = 0.25  # the velocity arrow shows where the root will be this much later
MOTION_SECONDS = 0.1  # image-motion arrows show this much of a second's motion
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class OverlayFrame:
    """What the overlay draws on one frame (a row of labels.parquet with its aligned state)."""

    frame_index: int
    t: float
    root_px: tuple[float, float] | None
    velocity_tip_px: tuple[float, float] | None
    objects: list[dict[str, Any]] = field(default_factory=list)
    humanoid_state: str | None = None
    keys: tuple[str, ...] = ()
    speed: float | None = None
    move_dir_cam: str | None = None
    caption: str = ""
    method: str | None = None


def velocity_tip(root_world: np.ndarray, velocity: np.ndarray, k: np.ndarray,
                 t_cam_world: np.ndarray) -> tuple[float, float] | None:
    """Where the root would be `VELOCITY_SECONDS` later at its velocity, in pixels."""
    tip = np.asarray(root_world, float) + VELOCITY_SECONDS * np.asarray(velocity, float)
    uv, depth = cam.project(tip[None], k, t_cam_world)
    return None if depth[0] <= 0 else (float(uv[0, 0]), float(uv[0, 1]))


def _pt(xy: tuple[float, float] | np.ndarray) -> tuple[int, int]:
    return (round((xy[0] - 0.5) * (1 << SHIFT)), round((xy[1] - 0.5) * (1 << SHIFT)))


def _arrow(image: np.ndarray, start: tuple[float, float], vector: np.ndarray,
           colour: tuple[int, int, int]) -> None:
    end = (start[0] + float(vector[0]), start[1] + float(vector[1]))
    if np.hypot(*vector) >= 1.0 and np.isfinite(end).all():
        cv2.arrowedLine(image, _pt(start), _pt(end), colour, 2, cv2.LINE_AA, SHIFT, 0.25)


def _text(image: np.ndarray, lines: list[str], origin: tuple[int, int], scale: float) -> None:
    height = round(22 * scale / 0.5)
    width = max((cv2.getTextSize(line, FONT, scale, 1)[0][0] for line in lines), default=0)
    x, y = origin
    box = image[y:y + height * len(lines) + 6, x:x + width + 10]
    box[:] = (box * 0.45).astype(np.uint8)  # darken behind the text
    for i, line in enumerate(lines):
        cv2.putText(image, line, (x + 5, y + height * (i + 1) - 4), FONT, scale, TEXT, 1,
                    cv2.LINE_AA)


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


def draw_overlay(image: np.ndarray, frame: OverlayFrame,
                 trail: list[tuple[float, float]]) -> np.ndarray:
    """A copy of the RGB `image` with `frame`'s labels drawn on it (text first, geometry on
    top); `trail` holds the root's earlier pixel positions, oldest first."""
    out = image.copy()
    scale = max(0.35, out.shape[0] / 720 * 0.6)
    keys = "+".join(frame.keys) or "-"
    speed = "-" if frame.speed is None else f"{frame.speed:.1f}"
    lines = [f"frame {frame.frame_index}  t {frame.t:.3f} s  {frame.method or ''}",
             f"{frame.humanoid_state or '-'}  speed {speed}  move {frame.move_dir_cam or '-'}",
             f"keys {keys}"]
    _text(out, lines, (4, 4), scale)
    caption = _wrap(frame.caption, max(20, int(out.shape[1] / (scale * 20))))[:3]
    if caption:
        height = round(22 * scale / 0.5)
        _text(out, caption, (4, out.shape[0] - height * len(caption) - 40), scale)
    for obj in frame.objects:
        if not obj.get("on_screen") or obj.get("box_xyxy") is None:
            continue
        x0, y0, x1, y1 = obj["box_xyxy"]
        colour = CHARACTER_BOX if obj.get("kind") == "character" else ENTITY_BOX
        cv2.rectangle(out, _pt((x0, y0)), _pt((x1, y1)), colour, 2, cv2.LINE_AA, SHIFT)
        label = f"{obj.get('name')} {obj.get('distance') or 0:.0f}"
        cv2.putText(out, label, (int(x0), max(10, int(y0) - 3)), FONT, scale * 0.8, colour, 1,
                    cv2.LINE_AA)
    points = [p for p in trail if p is not None and np.isfinite(p).all()]
    if len(points) > 1:
        polyline = np.array([_pt(p) for p in points], np.int32)
        cv2.polylines(out, [polyline], False, TRAIL, 1, cv2.LINE_AA, SHIFT)
    if frame.root_px is not None and np.isfinite(frame.root_px).all():
        character = next((o for o in frame.objects if o.get("kind") == "character"), None)
        if character is not None:
            _arrow(out, frame.root_px,
                   np.asarray(character["camera_caused_motion"]) * MOTION_SECONDS, CAMERA_MOTION)
            _arrow(out, frame.root_px,
                   np.asarray(character["object_caused_motion"]) * MOTION_SECONDS, OBJECT_MOTION)
        if frame.velocity_tip_px is not None:
            vector = np.subtract(frame.velocity_tip_px, frame.root_px)
            _arrow(out, frame.root_px, vector, VELOCITY)
        cv2.circle(out, _pt(frame.root_px), 4 << SHIFT, ROOT, -1, cv2.LINE_AA, SHIFT)
    return out
