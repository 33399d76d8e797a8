"""Per-frame camera matrices, the root part's pixel position and 2D boxes of 3D boxes.

Everything goes through `pipeline.camera`, the one camera model. Boxes are the image extent
of an oriented 3D box after clipping it against the camera's near plane: corners in front
of the plane are projected as they are, and every box edge that crosses the plane
contributes its crossing point, so a box that reaches behind the camera gets the right
extent instead of the mirrored projection of its hidden corners.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline import camera

NEAR = 0.1  # studs: Roblox's camera near plane

# The 12 edges of the box whose corners `camera.box_corners` lists (x, y, z sign bits).
EDGES = np.array([(a, b) for a in range(8) for b in range(a + 1, 8)
                  if bin(a ^ b).count("1") == 1])


@dataclass(frozen=True)
class CameraLabels:
    """Per-frame camera matrices; NaN for frames without state."""

    k: np.ndarray  # (n, 3, 3) captured px
    t_cam_world: np.ndarray  # (n, 4, 4) OpenCV
    position: np.ndarray  # (n, 3) world
    quat_xyzw: np.ndarray  # (n, 4) camera-to-world rotation (OpenCV camera axes)


def camera_labels(cam_cframe: np.ndarray, fov_y: np.ndarray, viewport: np.ndarray,
                  scale: np.ndarray, offset: np.ndarray) -> CameraLabels:
    """K in captured pixels and the OpenCV extrinsics of every frame."""
    k = camera.intrinsics(fov_y, viewport, scale, offset)
    t = camera.extrinsics(cam_cframe)
    r_world_cam = np.swapaxes(t[..., :3, :3], -1, -2)
    return CameraLabels(k=k, t_cam_world=t, position=cam_cframe[:, :3].copy(),
                        quat_xyzw=camera.quat_xyzw(r_world_cam))


def project_points(points: np.ndarray, k: np.ndarray,
                   t_cam_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One world point per row (m, 3) with its own camera (m, 3, 3), (m, 4, 4): uv, depth."""
    uv, depth = camera.project(points[:, None, :], k, t_cam_world)
    return uv[:, 0], depth[:, 0]


def engine_pixels(root_projection: np.ndarray, scale: np.ndarray,
                  offset: np.ndarray) -> np.ndarray:
    """The engine's own WorldToViewportPoint (viewport px) mapped to captured px."""
    return root_projection[:, :2] * scale + offset


@dataclass(frozen=True)
class Boxes:
    """2D boxes of m oriented 3D boxes, each seen by its own camera."""

    box_xyxy: np.ndarray  # (m, 4) clipped to the frame; NaN when not visible
    truncation: np.ndarray  # (m,) 1 - clipped area / unclipped area (1 when not visible)
    on_screen: np.ndarray  # (m,) bool
    behind_camera: np.ndarray  # (m,) bool: the whole box is behind the near plane
    distance: np.ndarray  # (m,) camera to box centre, studs
    depth: np.ndarray  # (m,) box centre z in the camera frame, studs
    centre_px: np.ndarray  # (m, 2) the centre's projection; NaN behind the camera


def boxes(cframe: np.ndarray, size: np.ndarray, k: np.ndarray, t_cam_world: np.ndarray,
          frame_size: np.ndarray) -> Boxes:
    """Project m boxes (cframe (m, 12), size (m, 3)) with per-box cameras and frame sizes."""
    m = len(cframe)
    corners = camera.to_camera(camera.box_corners(cframe, size), t_cam_world)  # (m, 8, 3)
    a, b = corners[:, EDGES[:, 0]], corners[:, EDGES[:, 1]]  # (m, 12, 3)
    za, zb = a[..., 2], b[..., 2]
    crosses = (za - NEAR) * (zb - NEAR) < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(crosses, (NEAR - za) / (zb - za), np.nan)
    crossing = a + s[..., None] * (b - a)
    points = np.concatenate([corners, crossing], axis=1)  # (m, 20, 3)
    keep = np.concatenate([corners[..., 2] >= NEAR, crosses], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = points[..., :2] / points[..., 2:3]
    uv = np.einsum("mij,mnj->mni", k[:, :2, :2], xy) + k[:, None, :2, 2]
    uv[~keep] = np.nan
    any_kept = keep.any(axis=1)
    lo = np.full((m, 2), np.nan)
    hi = np.full((m, 2), np.nan)
    if any_kept.any():
        lo[any_kept] = np.nanmin(uv[any_kept], axis=1)
        hi[any_kept] = np.nanmax(uv[any_kept], axis=1)
    full_area = np.prod(hi - lo, axis=1)
    clo = np.clip(lo, 0.0, frame_size)
    chi = np.clip(hi, 0.0, frame_size)
    clipped_area = np.prod(np.maximum(chi - clo, 0.0), axis=1)
    visible = any_kept & (clipped_area > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        truncation = np.where(visible, 1.0 - clipped_area / np.maximum(full_area, 1e-300), 1.0)
    box = np.concatenate([clo, chi], axis=1)
    box[~visible] = np.nan
    centre = cframe[:, :3]
    centre_cam = camera.to_camera(centre[:, None, :], t_cam_world)[:, 0]
    centre_px, _ = project_points(centre, k, t_cam_world)
    return Boxes(box_xyxy=box, truncation=np.clip(truncation, 0.0, 1.0), on_screen=visible,
                 behind_camera=~any_kept & ~np.isnan(corners[..., 2]).any(axis=1),
                 distance=np.linalg.norm(centre_cam, axis=1),
                 depth=centre_cam[:, 2], centre_px=centre_px)
