"""Overlay videos: a session's frames with their labels drawn on them (`stpe render`)."""

from pipeline.overlay._draw import OverlayFrame, draw_overlay, velocity_tip
from pipeline.overlay._render import OVERLAY, OverlayResult, overlay_frames, render_overlay

__all__ = [
    "OVERLAY",
    "OverlayFrame",
    "OverlayResult",
    "draw_overlay",
    "overlay_frames",
    "render_overlay",
    "velocity_tip",
]
