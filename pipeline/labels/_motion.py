"""Motion labels: camera velocity, camera angular velocity, the split of an object's image
motion into the part the camera caused and the part the object caused, and the character's
camera-relative movement direction.

Rates are backward differences over real frame times (frame N-1 to N); frame 0 has no
predecessor and copies frame 1's camera rates, while object motions stay NaN there.
"""

from __future__ import annotations

import numpy as np

from pipeline.labels._geometry import project_points

DIRECTIONS = ("forward", "forward-right", "right", "back-right", "back", "back-left", "left",
              "forward-left")
MOVING_SPEED = 0.5  # studs/s: below this horizontal speed the direction is "none"


def _backward(values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(values[i] - values[i-1]) / (t[i] - t[i-1]); row 0 copies row 1 (NaN when n == 1)."""
    out = np.full(values.shape, np.nan)
    if len(t) > 1:
        out[1:] = np.diff(values, axis=0) / np.diff(t)[:, None]
        out[0] = out[1]
    return out


def camera_velocity(position: np.ndarray, t: np.ndarray) -> np.ndarray:
    """World linear velocity of the camera (n, 3), studs/s."""
    return _backward(position, t)


def rotation_log(r: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) (axis times angle, rad) of rotation matrices (..., 3, 3)."""
    cos = np.clip((np.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    skew = np.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0],
                     r[..., 1, 0] - r[..., 0, 1]], axis=-1)
    sin = np.sin(angle)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(sin > 1e-9, angle / (2.0 * sin), 0.5)
    return skew * factor[..., None]


def camera_angular_velocity(t_cam_world: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Angular velocity (n, 3) rad/s in the current camera's (OpenCV) frame.

    With R = world-from-camera, R_N = R_{N-1} exp([w] dt), so w = log(R_{N-1}^T R_N) / dt."""
    out = np.full((len(t), 3), np.nan)
    if len(t) > 1:
        r_cw = t_cam_world[:, :3, :3]
        relative = r_cw[:-1] @ np.swapaxes(r_cw[1:], -1, -2)
        out[1:] = rotation_log(relative) / np.diff(t)[:, None]
        out[0] = out[1]
    return out


def motion_split(frame: np.ndarray, ids: np.ndarray, centre: np.ndarray, k: np.ndarray,
                 t_cam_world: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """Image motion of m object rows (px/s) and its camera-caused and object-caused parts.

    Row i (object `ids[i]` in frame `frame[i]`, world centre `centre[i]`) is paired with the
    same id in the previous frame. camera-caused = (P_prev seen by the current camera -
    P_prev seen by the previous camera) / dt; object-caused = (P_now - P_prev, both seen by
    the current camera) / dt; they sum to the image motion. NaN without a previous row."""
    m = len(frame)
    previous = np.full(m, -1)
    index = {(int(f), i): row for row, (f, i) in enumerate(zip(frame, ids, strict=True))}
    for row, (f, i) in enumerate(zip(frame, ids, strict=True)):
        previous[row] = index.get((int(f) - 1, i), -1)
    has = previous >= 0
    nan2 = np.full((m, 2), np.nan)
    image, by_camera, by_object = nan2.copy(), nan2.copy(), nan2.copy()
    if not has.any():
        return image, by_camera, by_object
    rows, prev = np.flatnonzero(has), previous[has]
    f_now, f_prev = frame[rows], frame[prev]
    dt = (t[f_now] - t[f_prev])[:, None]
    now_now, _ = project_points(centre[rows], k[f_now], t_cam_world[f_now])
    prev_now, _ = project_points(centre[prev], k[f_now], t_cam_world[f_now])
    prev_prev, _ = project_points(centre[prev], k[f_prev], t_cam_world[f_prev])
    image[rows] = (now_now - prev_prev) / dt
    by_camera[rows] = (prev_now - prev_prev) / dt
    by_object[rows] = (now_now - prev_now) / dt
    return image, by_camera, by_object


def horizontal_speed(velocity: np.ndarray) -> np.ndarray:
    """Speed in the ground plane (n,), studs/s."""
    return np.hypot(velocity[:, 0], velocity[:, 2])


def move_direction(velocity: np.ndarray, intent: np.ndarray, cam_cframe: np.ndarray,
                   threshold: float = MOVING_SPEED) -> np.ndarray:
    """Camera-relative movement direction of every frame: one of DIRECTIONS or "none".

    The direction is the humanoid's MoveDirection (what the player asks for) when it is set,
    else the root velocity, both in the ground plane; it is read in the camera's yaw frame
    (the camera's look and right vectors flattened onto the ground). "none" when the
    horizontal root speed is under `threshold` or the frame has no state."""
    direction = np.where((np.hypot(intent[:, 0], intent[:, 2]) > 0.1)[:, None], intent, velocity)
    right = cam_cframe[:, [3, 9]]  # column 0 (right), x and z rows
    look = -cam_cframe[:, [5, 11]]  # minus column 2 (back)
    forward_amount = direction[:, 0] * look[:, 0] + direction[:, 2] * look[:, 1]
    right_amount = direction[:, 0] * right[:, 0] + direction[:, 2] * right[:, 1]
    angle = np.degrees(np.arctan2(right_amount, forward_amount))
    moving = horizontal_speed(velocity) >= threshold
    sector = np.zeros(len(angle), dtype=np.int64)
    ok = moving & ~np.isnan(angle)
    sector[ok] = np.round(angle[ok] / 45.0).astype(np.int64) % 8
    names = np.asarray(DIRECTIONS, dtype=object)[sector]
    return np.where(ok, names, "none").astype(object)


def yaw(cframe: np.ndarray) -> np.ndarray:
    """Heading angle (rad) of a CFrame's look vector (-Z) around world +Y, unwrapped."""
    look_x, look_z = -cframe[:, 5], -cframe[:, 11]
    heading = np.arctan2(-look_x, -look_z)  # 0 looking down -Z; positive turning left
    valid = ~np.isnan(heading)
    out = np.full(len(heading), np.nan)
    out[valid] = np.unwrap(heading[valid])
    return out
