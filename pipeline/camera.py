"""The camera model: Roblox CFrames and field of view to OpenCV intrinsics and extrinsics.

One implementation, used by the labels, the overlay renderer and the demo world, so what the
demo draws and what the labels claim cannot disagree.

Conventions (docs/conventions.md):
- World: Roblox's, studs, right-handed, +Y up. A CFrame's rotation columns are its right (+X),
  up (+Y) and back (+Z) vectors; the Roblox camera looks down its -Z.
- Camera frame: OpenCV's, x right, y down, z forward. `T_cam_world` maps world points to it.
- Image coordinates: pixels of the captured frame, origin at the top-left corner of the
  top-left pixel (that pixel's centre is (0.5, 0.5)), the same as Roblox viewport points.
- Intrinsics: fy = (H/2) / tan(fov_y/2), fx = fy, principal point at the viewport centre, then
  mapped from viewport pixels to captured pixels by a measured scale and offset.
All functions are vectorised over leading axes (`...`).
"""

from __future__ import annotations

import numpy as np

# Roblox camera axes (x right, y up, z back) to OpenCV camera axes (x right, y down, z forward).
ROBLOX_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


def cframe_rotation(cframe: np.ndarray) -> np.ndarray:
    """The 3x3 rotation of `CFrame:GetComponents()` arrays (..., 12) -> (..., 3, 3)."""
    cframe = np.asarray(cframe, dtype=np.float64)
    return cframe[..., 3:12].reshape(*cframe.shape[:-1], 3, 3)


def cframe_matrix(cframe: np.ndarray) -> np.ndarray:
    """World-from-local 4x4 transforms of CFrame component arrays (..., 12)."""
    cframe = np.asarray(cframe, dtype=np.float64)
    out = np.zeros((*cframe.shape[:-1], 4, 4))
    out[..., :3, :3] = cframe_rotation(cframe)
    out[..., :3, 3] = cframe[..., :3]
    out[..., 3, 3] = 1.0
    return out


def extrinsics(camera_cframe: np.ndarray) -> np.ndarray:
    """`T_cam_world` (..., 4, 4) in the OpenCV convention from camera CFrames (..., 12)."""
    camera_cframe = np.asarray(camera_cframe, dtype=np.float64)
    rotation = cframe_rotation(camera_cframe)
    position = camera_cframe[..., :3]
    r_cam_world = ROBLOX_TO_OPENCV @ np.swapaxes(rotation, -1, -2)
    out = np.zeros((*camera_cframe.shape[:-1], 4, 4))
    out[..., :3, :3] = r_cam_world
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", r_cam_world, position)
    out[..., 3, 3] = 1.0
    return out


def intrinsics(fov_y_deg: np.ndarray | float, viewport: np.ndarray,
               scale: np.ndarray | tuple[float, float] = (1.0, 1.0),
               offset: np.ndarray | tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """`K` (..., 3, 3) in captured-frame pixels.

    `viewport` is (..., 2) width, height in viewport pixels; a captured pixel is
    `scale * viewport_pixel + offset` (measured from the timecode or the frame size)."""
    fov = np.radians(np.asarray(fov_y_deg, dtype=np.float64))
    viewport = np.asarray(viewport, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    f = (viewport[..., 1] / 2.0) / np.tan(fov / 2.0)
    shape = np.broadcast_shapes(f.shape, scale.shape[:-1], offset.shape[:-1])
    k = np.zeros((*shape, 3, 3))
    k[..., 0, 0] = f * scale[..., 0]
    k[..., 1, 1] = f * scale[..., 1]
    k[..., 0, 2] = viewport[..., 0] / 2.0 * scale[..., 0] + offset[..., 0]
    k[..., 1, 2] = viewport[..., 1] / 2.0 * scale[..., 1] + offset[..., 1]
    k[..., 2, 2] = 1.0
    return k


def to_camera(points_world: np.ndarray, t_cam_world: np.ndarray) -> np.ndarray:
    """World points (..., N, 3) in the camera frame (..., N, 3); z > 0 is in front."""
    points = np.asarray(points_world, dtype=np.float64)
    rotation = t_cam_world[..., None, :3, :3]
    return np.einsum("...ij,...j->...i", rotation, points) + t_cam_world[..., None, :3, 3]


def project(points_world: np.ndarray, k: np.ndarray,
            t_cam_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points (..., N, 3): pixel coordinates (..., N, 2) and depth (..., N).

    Points behind the camera (depth <= 0) get NaN pixel coordinates."""
    cam = to_camera(points_world, t_cam_world)
    depth = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = cam[..., :2] / depth[..., None]
    uv = np.einsum("...ij,...nj->...ni", k[..., :2, :2], xy) + k[..., None, :2, 2]
    uv[depth <= 0] = np.nan
    return uv, depth


def box_corners(cframe: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The 8 world corners (..., 8, 3) of oriented boxes given by CFrames and sizes (..., 3)."""
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    local = signs * (np.asarray(size, dtype=np.float64)[..., None, :] / 2.0)
    rotation = cframe_rotation(cframe)
    centre = np.asarray(cframe, dtype=np.float64)[..., None, :3]
    return np.einsum("...ij,...nj->...ni", rotation, local) + centre


def quat_xyzw(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) ordered x, y, z, w, with w >= 0, from rotation matrices
    (..., 3, 3).

    Shepperd's method: the largest of |w|, |x|, |y|, |z| comes from the diagonal, the other
    three from off-diagonal sums and differences divided by it. Taking every component from
    the diagonal instead loses their relative signs on half turns (w = 0, e.g. every level
    camera's camera-to-world rotation) and half the digits near the axes."""
    r = np.asarray(rotation, dtype=np.float64)
    r00, r11, r22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    sums = np.stack([1.0 + r00 - r11 - r22, 1.0 - r00 + r11 - r22,
                     1.0 - r00 - r11 + r22, 1.0 + r00 + r11 + r22], axis=-1)  # 4 x^2 .. 4 w^2
    pick = np.argmax(sums, axis=-1)
    big = np.sqrt(np.take_along_axis(sums, pick[..., None], axis=-1)[..., 0]) * 2.0  # 4|.|/2
    d21 = r[..., 2, 1] - r[..., 1, 2]  # 4 w x
    d02 = r[..., 0, 2] - r[..., 2, 0]  # 4 w y
    d10 = r[..., 1, 0] - r[..., 0, 1]  # 4 w z
    s01 = r[..., 0, 1] + r[..., 1, 0]  # 4 x y
    s02 = r[..., 0, 2] + r[..., 2, 0]  # 4 x z
    s12 = r[..., 1, 2] + r[..., 2, 1]  # 4 y z
    # row i: 4 * (x, y, z, w) * (component i), divided below by big = 4 |component i|
    table = np.stack([np.stack([big ** 2 / 4, s01, s02, d21], axis=-1),
                      np.stack([s01, big ** 2 / 4, s12, d02], axis=-1),
                      np.stack([s02, s12, big ** 2 / 4, d10], axis=-1),
                      np.stack([d21, d02, d10, big ** 2 / 4], axis=-1)], axis=-2)
    q = np.take_along_axis(table, pick[..., None, None], axis=-2)[..., 0, :] / big[..., None]
    return np.where(q[..., 3:4] < 0, -q, q)


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """A Roblox camera CFrame (12 components) at `eye` looking at `target`, world up +Y
    (like `CFrame.lookAt`)."""
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    rotation = np.stack([right, up, -forward], axis=1)  # columns: right, up, back
    return np.concatenate([eye, rotation.reshape(9)])
