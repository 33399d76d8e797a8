"""The demo game's own camera: `Camera:WorldToViewportPoint` and `Camera:ViewportPointToRay`
written from the Roblox engine reference, independently of `pipeline.camera`.

The demo plays the Roblox engine, so it must not borrow the camera model the labels use:
the engine-vs-labels checks (the sample's `root_projection` against the labels' root pixel,
and the marker drawn in the demo video) then compare two implementations. This module works
with the camera's basis vectors and the frustum's half extents; it never builds `K`.

Rules, each from the reference:
- `Camera.FieldOfView` is the vertical field of view in degrees, and "uniform scaling is
  enforced": the horizontal extent follows from the aspect of `Camera.ViewportSize` [1].
- A CFrame's `RightVector`, `UpVector` and `LookVector` are its rotation's x column, y column
  and the negated z column; the components of `CFrame:GetComponents()` are the position then
  the rotation row by row [2].
- `WorldToViewportPoint` returns x, y: the offset of the point from the top-left corner of the
  viewport in pixels, z: its depth from the screen in studs, and whether it is inside the
  viewport [3]. `ViewportPointToRay(ViewportSize / 2)` is the ray straight ahead [4].

[1] https://create.roblox.com/docs/reference/engine/classes/Camera#FieldOfView
    and https://create.roblox.com/docs/reference/engine/classes/Camera#ViewportSize
[2] https://create.roblox.com/docs/reference/engine/datatypes/CFrame (LookVector, GetComponents)
[3] https://create.roblox.com/docs/reference/engine/classes/Camera#WorldToViewportPoint
[4] https://create.roblox.com/docs/reference/engine/classes/Camera#ViewportPointToRay
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EngineCamera:
    """A Roblox camera as the engine sees it: where it is, its basis, its frustum."""

    position: np.ndarray  # (3,) world studs
    right: np.ndarray  # (3,) RightVector
    up: np.ndarray  # (3,) UpVector
    look: np.ndarray  # (3,) LookVector
    tan_half_y: float  # tan(FieldOfView / 2): half the frustum's height at depth 1
    width: float  # ViewportSize.X, px
    height: float  # ViewportSize.Y, px

    @classmethod
    def of(cls, cframe: np.ndarray, fov_y_deg: float,
           viewport: tuple[float, float]) -> EngineCamera:
        c = [float(v) for v in cframe]
        # GetComponents: x, y, z, R00, R01, R02, R10, R11, R12, R20, R21, R22
        right = np.array([c[3], c[6], c[9]])
        up = np.array([c[4], c[7], c[10]])
        back = np.array([c[5], c[8], c[11]])
        return cls(np.array(c[:3]), right, up, -back, math.tan(math.radians(fov_y_deg) / 2),
                   float(viewport[0]), float(viewport[1]))

    @property
    def tan_half_x(self) -> float:
        """Half the frustum's width at depth 1 (uniform scaling: the viewport's aspect)."""
        return self.tan_half_y * self.width / self.height

    def view_coordinates(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) as (along RightVector, along UpVector, along LookVector)."""
        d = np.asarray(points, dtype=np.float64) - self.position
        return np.stack([d @ self.right, d @ self.up, d @ self.look], axis=-1)

    def viewport_of_view(self, view: np.ndarray) -> np.ndarray:
        """View coordinates (N, 3) with depth > 0 to viewport pixels (N, 2): the frustum's
        [-1, 1] x [-1, 1] at each depth spans the viewport, top-left (0, 0), y down."""
        nx = view[:, 0] / (view[:, 2] * self.tan_half_x)  # -1 left edge, +1 right edge
        ny = view[:, 1] / (view[:, 2] * self.tan_half_y)  # -1 bottom edge, +1 top edge
        return np.stack([(nx + 1.0) / 2.0 * self.width, (1.0 - ny) / 2.0 * self.height],
                        axis=-1)

    def world_to_viewport_point(self, points: np.ndarray) -> np.ndarray:
        """`WorldToViewportPoint` of world points (N, 3): rows of [x, y, depth, on_screen];
        x, y are NaN for points at or behind the camera."""
        view = self.view_coordinates(points)
        depth = view[:, 2]
        xy = np.full((len(view), 2), np.nan)
        front = depth > 0
        xy[front] = self.viewport_of_view(view[front])
        with np.errstate(invalid="ignore"):
            inside = (front & (xy[:, 0] >= 0) & (xy[:, 0] <= self.width)
                      & (xy[:, 1] >= 0) & (xy[:, 1] <= self.height))
        return np.column_stack([xy, depth, inside.astype(np.float64)])

    def viewport_point_to_ray(self, x: float, y: float,
                              depth: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """`ViewportPointToRay`: the unit direction through viewport pixel (x, y), and the
        ray's origin `depth` studs from the camera along it."""
        nx = 2.0 * x / self.width - 1.0
        ny = 1.0 - 2.0 * y / self.height
        direction = (self.look + nx * self.tan_half_x * self.right
                     + ny * self.tan_half_y * self.up)
        direction = direction / np.linalg.norm(direction)
        return self.position + depth * direction, direction


def cframe_axes(cframe: np.ndarray) -> np.ndarray:
    """The CFrame's RightVector, UpVector and its back vector (-LookVector) as rows (3, 3)."""
    c = [float(v) for v in cframe]
    return np.array([[c[3], c[6], c[9]], [c[4], c[7], c[10]], [c[5], c[8], c[11]]])


def box_corners(cframe: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The 8 world corners (8, 3) of a part: `CFrame * Vector3.new(sx, sy, sz) * Size / 2` for
    every sign triple, index 4*ix + 2*iy + iz (i = 1 for the + side)."""
    axes = cframe_axes(cframe)
    half = np.asarray(size, dtype=np.float64) / 2.0
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    return np.asarray(cframe, dtype=np.float64)[:3] + (signs * half) @ axes
