"""CFrame interpolation: linear position, quaternion slerp rotation (vectorised numpy).

`CFrame:GetComponents()` is x, y, z then the rotation matrix R00..R22 row by row.
Quaternions are (x, y, z, w).
"""

from __future__ import annotations

import numpy as np


def matrix_to_quat(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) xyzw of rotation matrices (..., 3, 3), by the largest of
    the four candidate denominators (stable for every rotation)."""
    r = np.asarray(rotation, np.float64)
    m00, m11, m22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    candidates = np.stack([
        np.stack([1 + m00 - m11 - m22, r[..., 0, 1] + r[..., 1, 0],
                  r[..., 0, 2] + r[..., 2, 0], r[..., 2, 1] - r[..., 1, 2]], -1),
        np.stack([r[..., 0, 1] + r[..., 1, 0], 1 - m00 + m11 - m22,
                  r[..., 1, 2] + r[..., 2, 1], r[..., 0, 2] - r[..., 2, 0]], -1),
        np.stack([r[..., 0, 2] + r[..., 2, 0], r[..., 1, 2] + r[..., 2, 1],
                  1 - m00 - m11 + m22, r[..., 1, 0] - r[..., 0, 1]], -1),
        np.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0],
                  r[..., 1, 0] - r[..., 0, 1], 1 + m00 + m11 + m22], -1),
    ], -2)  # (..., 4, 4): row k is 4 * q * q[k]
    diag = np.stack([1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22,
                     1 + m00 + m11 + m22], -1)
    best = np.argmax(diag, -1)
    q = np.take_along_axis(candidates, best[..., None, None], -2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., 3:4] < 0, -q, q)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of quaternions (..., 4) xyzw."""
    q = np.asarray(q, np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def slerp(q0: np.ndarray, q1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Spherical interpolation from q0 (w=0) to q1 (w=1) along the shorter arc."""
    q0, q1 = np.asarray(q0, np.float64), np.asarray(q1, np.float64)
    w = np.asarray(w, np.float64)[..., None]
    dot = np.sum(q0 * q1, -1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    near = sin < 1e-9
    safe = np.where(near, 1.0, sin)
    a = np.where(near, 1 - w, np.sin((1 - w) * theta) / safe)
    b = np.where(near, w, np.sin(w * theta) / safe)
    out = a * q0 + b * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def interpolate_cframes(c0: np.ndarray, c1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """CFrame components (N, 12) between c0 (w=0) and c1 (w=1)."""
    c0, c1 = np.asarray(c0, np.float64), np.asarray(c1, np.float64)
    w = np.asarray(w, np.float64)
    position = c0[:, :3] + (c1[:, :3] - c0[:, :3]) * w[:, None]
    q = slerp(matrix_to_quat(c0[:, 3:].reshape(-1, 3, 3)),
              matrix_to_quat(c1[:, 3:].reshape(-1, 3, 3)), w)
    return np.concatenate([position, quat_to_matrix(q).reshape(-1, 9)], axis=1)
