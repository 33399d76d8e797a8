"""Draw what the demo world's camera sees, with OpenCV, through the engine's own camera.

The demo plays the Roblox engine, so it projects with `pipeline.demo._engine` (written from
the engine reference), not with `pipeline.camera`, the model the labels use.

Boxes are six shaded faces, back faces culled, clipped at the near plane and drawn far to
near (painter's ordering); the baseplate is a clipped quad with grid lines. Vertices are
drawn with 1/16 px precision in the pixel-centre convention of Roblox viewport points (the
centre of pixel (i, j) is (i + 0.5, j + 0.5)), so a projected point lands where it is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from alignment._timecode_code import ROWS, render_strip
from pipeline.demo._engine import EngineCamera, cframe_axes
from pipeline.demo._engine import box_corners as engine_box_corners

NEAR = 0.1  # studs: the near clipping plane
SHIFT = 4  # fractional bits of OpenCV's fixed-point drawing
SKY = (235, 206, 160)  # BGR
GROUND = (96, 140, 110)
GRID = (70, 105, 80)
GROUND_HALF = 160.0
GRID_STEP = 8.0
ROOT_MARKER = (255, 0, 255)  # magenta: the root part's centre, drawn over everything
ROOT_MARKER_RADIUS = 3.0
_LIGHT = np.array([0.4, 0.85, 0.35]) / np.linalg.norm([0.4, 0.85, 0.35])
# corner indices of box_corners (index = 4*ix + 2*iy + iz) per face, with the face's axis
_FACES = (((0, 1, 3, 2), 0, -1), ((4, 6, 7, 5), 0, 1), ((0, 4, 5, 1), 1, -1),
          ((2, 3, 7, 6), 1, 1), ((0, 2, 6, 4), 2, -1), ((1, 5, 7, 3), 2, 1))


@dataclass(frozen=True)
class Box:
    """An oriented box to draw: CFrame components, size (studs), colour (BGR); the face the
    box looks along (local -Z) may have its own colour."""

    cframe: tuple[float, ...]
    size: tuple[float, float, float]
    colour: tuple[int, int, int]
    front_colour: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class View:
    """A camera looking at the world, as the engine projects it. "Camera frame" points here
    are (along RightVector, along UpVector, along LookVector): depth is the third."""

    engine: EngineCamera
    width: int
    height: int

    @classmethod
    def of(cls, camera_cframe: np.ndarray, fov_y: float, viewport: tuple[int, int]) -> View:
        engine = EngineCamera.of(camera_cframe, fov_y, (float(viewport[0]), float(viewport[1])))
        return cls(engine, int(viewport[0]), int(viewport[1]))

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return self.engine.view_coordinates(np.asarray(points, float))

    def pixels(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points (N, 3) in front of the camera to pixel coordinates (N, 2)."""
        return self.engine.viewport_of_view(points_cam)


def clip_near(points_cam: np.ndarray) -> np.ndarray:
    """Clip a convex polygon (N, 3) in the camera frame to z >= NEAR (Sutherland-Hodgman)."""
    out = []
    for i in range(len(points_cam)):
        a, b = points_cam[i], points_cam[(i + 1) % len(points_cam)]
        a_in, b_in = a[2] >= NEAR, b[2] >= NEAR
        if a_in:
            out.append(a)
        if a_in != b_in:
            out.append(a + (b - a) * (NEAR - a[2]) / (b[2] - a[2]))
    return np.array(out).reshape(-1, 3)


def _fixed(pixels: np.ndarray) -> np.ndarray:
    """Pixel coordinates (centre convention) to OpenCV fixed-point integer vertices."""
    return np.round((pixels - 0.5) * (1 << SHIFT)).astype(np.int32)


def _shade(colour: tuple[int, int, int], normal: np.ndarray) -> tuple[int, int, int]:
    factor = 0.55 + 0.45 * max(0.0, float(normal @ _LIGHT))
    return tuple(round(c * factor) for c in colour)


def _box_faces(box: Box, view: View) -> list[tuple[float, np.ndarray, tuple[int, int, int]]]:
    corners = engine_box_corners(np.array(box.cframe), np.array(box.size))
    axes = cframe_axes(np.array(box.cframe))
    eye = view.engine.position
    faces = []
    for indices, axis, sign in _FACES:
        normal = axes[axis] * sign
        quad = corners[list(indices)]
        if normal @ (quad.mean(axis=0) - eye) >= 0:
            continue  # facing away
        polygon = clip_near(view.to_camera(quad))
        if len(polygon) < 3:
            continue
        front = axis == 2 and sign == -1 and box.front_colour is not None
        colour = _shade(box.front_colour if front else box.colour, normal)
        faces.append((float(polygon[:, 2].mean()), view.pixels(polygon), colour))
    return faces


def _draw_ground(image: np.ndarray, view: View) -> None:
    g = GROUND_HALF
    quad = np.array([[-g, 0, -g], [g, 0, -g], [g, 0, g], [-g, 0, g]], float)
    polygon = clip_near(view.to_camera(quad))
    if len(polygon) >= 3:
        cv2.fillPoly(image, [_fixed(view.pixels(polygon))], GROUND, cv2.LINE_AA, SHIFT)
    ticks = np.arange(-g, g + GRID_STEP / 2, GRID_STEP)
    starts = np.concatenate([np.column_stack([ticks, 0 * ticks, 0 * ticks - g]),
                             np.column_stack([0 * ticks - g, 0 * ticks, ticks])])
    ends = starts + np.concatenate([np.tile([0, 0, 2 * g], (len(ticks), 1)),
                                    np.tile([2 * g, 0, 0], (len(ticks), 1))])
    a, b = view.to_camera(starts), view.to_camera(ends)
    for p, q in zip(a, b, strict=True):
        if p[2] < NEAR and q[2] < NEAR:
            continue
        if p[2] < NEAR:
            p = p + (q - p) * (NEAR - p[2]) / (q[2] - p[2])
        elif q[2] < NEAR:
            q = q + (p - q) * (NEAR - q[2]) / (p[2] - q[2])
        u, v = _fixed(view.pixels(np.array([p, q])))
        cv2.line(image, tuple(u.tolist()), tuple(v.tolist()), GRID, 1, cv2.LINE_AA, SHIFT)


def draw_scene(view: View, boxes: list[Box], *, ground: bool = True) -> np.ndarray:
    """A BGR image of the boxes (and the baseplate) seen from `view`."""
    image = np.empty((view.height, view.width, 3), np.uint8)
    image[:] = SKY
    if ground:
        _draw_ground(image, view)
    faces = [face for box in boxes for face in _box_faces(box, view)]
    for _, pixels, colour in sorted(faces, key=lambda f: -f[0]):
        cv2.fillPoly(image, [_fixed(pixels)], colour, cv2.LINE_AA, SHIFT)
    return image


def draw_marker(image: np.ndarray, view: View, point: np.ndarray) -> np.ndarray | None:
    """Draw the root marker (in place) where `point` projects; its pixel position or None."""
    p = view.to_camera(np.asarray(point, float)[None])
    if p[0, 2] < NEAR:
        return None
    px = view.pixels(p)[0]
    centre = tuple(_fixed(px).tolist())
    cv2.circle(image, centre, int(ROOT_MARKER_RADIUS * (1 << SHIFT)), ROOT_MARKER, -1,
               cv2.LINE_AA, SHIFT)
    return px


def marker_centroid(image: np.ndarray) -> tuple[float, float] | None:
    """Centre (pixel-centre convention) of the magenta root marker in a BGR image, or None
    when no marker is visible. Weighted by how magenta each pixel is, so the antialiased
    edge and video compression move it by well under a pixel."""
    b, g, r = (image[..., i].astype(float) for i in range(3))
    weight = np.clip((np.minimum(b, r) - g) / 255.0, 0, None)
    weight[weight < 0.3] = 0
    ys, xs = np.nonzero(weight)
    if xs.size == 0:
        return None
    w = weight[ys, xs]
    return float((xs * w).sum() / w.sum() + 0.5), float((ys * w).sum() / w.sum() + 0.5)


def draw_timecode(image: np.ndarray, seq: int, cell: int) -> None:
    """Draw the timecode strip (in place) at the bottom-left corner (docs/timecode.md)."""
    strip = render_strip(seq, cell)
    height, width = ROWS * cell, strip.shape[1]
    image[image.shape[0] - height:, :width] = strip
