"""One rendered frame of the demo world: what the camera sees, the root marker, the timecode.

The frame is drawn from the same state as the sample it goes with, and the timecode strip
encodes that sample's `seq` in the same step, as the plugin does in Roblox.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alignment._timecode_code import DEFAULT_CELL
from pipeline.demo._raster import Box, View, draw_marker, draw_scene, draw_timecode
from pipeline.demo._world import (
    BODY_DROP,
    BODY_SIZE,
    FOV_Y,
    PROPS,
    CharacterState,
    camera_cframe,
    root_cframe,
)

BODY_COLOUR = (200, 120, 40)  # BGR
FACE_COLOUR = (60, 200, 250)


@dataclass(frozen=True)
class Frame:
    """A rendered BGR frame and where the root part's centre was drawn (viewport px)."""

    image: np.ndarray
    root_px: tuple[float, float] | None


def world_boxes(state: CharacterState) -> list[Box]:
    """Every box in the world at this state: the props (at their time) and the character."""
    identity = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    boxes = [Box((*p.position(state.t).tolist(), *identity), p.size, p.colour) for p in PROPS]
    root_cf = root_cframe(state)
    body = (root_cf[0], root_cf[1] - BODY_DROP, root_cf[2], *root_cf[3:].tolist())
    boxes.append(Box(tuple(float(v) for v in body), BODY_SIZE, BODY_COLOUR, FACE_COLOUR))
    return boxes


def render_state(state: CharacterState, seq: int, viewport: tuple[int, int], *,
                 timecode_cell: int | None = DEFAULT_CELL) -> Frame:
    """Draw the world as the follow camera sees it, the root marker and the timecode."""
    view = View.of(camera_cframe(state), FOV_Y, viewport)
    image = draw_scene(view, world_boxes(state))
    root_px = draw_marker(image, view, np.array(state.position))
    if timecode_cell:
        draw_timecode(image, seq, timecode_cell)
    return Frame(image, None if root_px is None else (float(root_px[0]), float(root_px[1])))
