"""Draw one frame's labels over its video image: the root point and trail, 2D boxes named
with their distance, the velocity projected into the image, the camera-vs-object motion
split, a text panel, the caption and (on frames 480 px wide or more) a legend.

Text sits on a darkened band so it reads on grass, sky or snow alike.

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
LEGEND_MIN_WIDTH = 480
LEGEND = (  # (what, colour, drawn as)
    ("root point, its trail", ROOT, "dot"),
    (f"velocity: the root {VELOCITY_SECONDS:g} s ahead", VELOCITY, "arrow"),
    ("image motion the camera causes", CAMERA_MOTION, "arrow"),
    ("image motion the character causes", OBJECT_MOTION, "arrow"),
    ("character box", CHARACTER_BOX, "box"),
    ("object box: name, distance in studs", ENTITY_BOX, "box"),
)


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


def _darken(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    """Darken a rectangle (clipped to the image) so text on it reads on any background."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 > x0 and y1 > y0:
        box = image[y0:y1, x0:x1]
        box[:] = (box * 0.3).astype(np.uint8)


def _line_height(scale: float) -> int:
    return round(22 * scale / 0.5)


def _text(image: np.ndarray, lines: list[str], origin: tuple[int, int], scale: float) -> None:
    height = _line_height(scale)
    width = max((cv2.getTextSize(line, FONT, scale, 1)[0][0] for line in lines), default=0)
    x, y = origin
    _darken(image, x, y, x + width + 10, y + height * len(lines) + 6)
    for i, line in enumerate(lines):
        cv2.putText(image, line, (x + 5, y + height * (i + 1) - 4), FONT, scale, TEXT, 1,
                    cv2.LINE_AA)


def _label(image: np.ndarray, text: str, x: int, bottom: int, scale: float,
           colour: tuple[int, int, int]) -> None:
    """`text` in `colour` on a dark band whose bottom edge is `bottom` (above a box)."""
    (width, height), base = cv2.getTextSize(text, FONT, scale, 1)
    top = max(0, bottom - height - base - 4)
    _darken(image, x, top, x + width + 6, top + height + base + 4)
    cv2.putText(image, text, (x + 3, top + height + 2), FONT, scale, colour, 1, cv2.LINE_AA)


def _legend(image: np.ndarray, scale: float) -> None:
    """The key to the colours, in the top-right corner."""
    height = _line_height(scale)
    swatch = round(28 * scale / 0.5)
    width = max(cv2.getTextSize(what, FONT, scale, 1)[0][0] for what, _, _ in LEGEND)
    x = image.shape[1] - width - swatch - 22
    _darken(image, x, 4, image.shape[1] - 4, 4 + height * len(LEGEND) + 6)
    for i, (what, colour, shape) in enumerate(LEGEND):
        mid = 4 + height * i + height // 2 + 3
        a, b = (x + 6, mid), (x + 6 + swatch, mid)
        if shape == "arrow":
            cv2.arrowedLine(image, a, b, colour, 2, cv2.LINE_AA, 0, 0.3)
        elif shape == "box":
            cv2.rectangle(image, (a[0], mid - height // 3), (b[0], mid + height // 3), colour,
                          2, cv2.LINE_AA)
        else:
            cv2.line(image, a, b, TRAIL, 1, cv2.LINE_AA)
            cv2.circle(image, (b[0] - 4, mid), 4, colour, -1, cv2.LINE_AA)
        cv2.putText(image, what, (b[0] + 8, mid + height // 3), FONT, scale, TEXT, 1,
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
    keys = "+".join(frame.keys) or "none"
    speed = "-" if frame.speed is None else f"{frame.speed:.1f} studs/s"
    matched = f"matched by {frame.method}" if frame.method not in (None, "none") else \
        "no state matched"
    lines = [f"frame {frame.frame_index}  t {frame.t:.3f} s  {matched}",
             f"{frame.humanoid_state or '-'}  speed {speed}  moving {frame.move_dir_cam or '-'}",
             f"keys held: {keys}"]
    _text(out, lines, (4, 4), scale)
    if out.shape[1] >= LEGEND_MIN_WIDTH:
        _legend(out, scale)
    caption = _wrap(frame.caption, max(20, int(out.shape[1] / (scale * 20))))[:3]
    if caption:
        height = _line_height(scale)
        _text(out, caption, (4, out.shape[0] - height * len(caption) - 40), scale)
    for obj in frame.objects:
        if not obj.get("on_screen") or obj.get("box_xyxy") is None:
            continue
        x0, y0, x1, y1 = obj["box_xyxy"]
        colour = CHARACTER_BOX if obj.get("kind") == "character" else ENTITY_BOX
        distance = obj.get("distance")
        name = obj.get("name") or obj.get("kind") or "?"
        text = name if distance is None else f"{name} {distance:.0f} studs"
        _label(out, text, int(x0), int(np.floor(y0 - 0.5)) - 1, scale * 0.8, colour)
        cv2.rectangle(out, _pt((x0, y0)), _pt((x1, y1)), colour, 2, cv2.LINE_AA, SHIFT)
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
