"""The state at each frame's content time, column by column, as arrow arrays.

Linear for float scalars and float vectors (positions, velocities), slerp for the rotation of
`*cframe` columns, linear u/v/depth and nearest on-screen flag for `*projection` columns,
nearest for everything discrete (ints, strings, bools, lists, `dt`). `entities` is nearest,
with each entity's cframe interpolated when both neighbours hold that entity. Where either
neighbour is null the nearest value is used. Unmatched frames get nulls.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from alignment._match import Matching

NEAREST_FLOATS = frozenset({"dt"})

# --- CFrames: linear position, quaternion (x, y, z, w) slerp rotation ----------------------
# `CFrame:GetComponents()` is x, y, z then the rotation matrix R00..R22 row by row.


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


# --- columns -----------------------------------------------------------------------------


def _valid(array: pa.Array) -> np.ndarray:
    return ~np.asarray(array.is_null().to_numpy(zero_copy_only=False), bool)


def _fixed_to_numpy(array: pa.FixedSizeListArray) -> np.ndarray:
    size = array.type.list_size
    values = array.values.slice(array.offset * size, len(array) * size)
    return np.array(values.to_numpy(zero_copy_only=False), np.float64).reshape(-1, size)


def _blend(name: str, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    if name.endswith("cframe") and a.shape[1] == 12:
        return interpolate_cframes(a, b, w)
    out = a + (b - a) * w[:, None]
    if name.endswith("projection"):
        out[:, 3:] = np.where(w[:, None] < 0.5, a[:, 3:], b[:, 3:])
    return out


def _interpolated(name: str, column: pa.Array, m: Matching, keep: np.ndarray) -> pa.Array:
    """Linear/slerp column values at the frames; `keep` marks matched frames."""
    nearest = column.take(pa.array(np.where(keep, m.nearest, 0)))
    left, right = column.take(pa.array(m.left)), column.take(pa.array(m.right))
    both = _valid(left) & _valid(right) & keep & (m.weight > 0)
    valid = _valid(nearest) & keep
    if pa.types.is_fixed_size_list(column.type):
        out = _fixed_to_numpy(nearest)
        if both.any():
            out[both] = _blend(name, _fixed_to_numpy(left)[both], _fixed_to_numpy(right)[both],
                               m.weight[both])
        flat = pa.array(out.reshape(-1), pa.float64())
        return pa.FixedSizeListArray.from_arrays(flat, type=column.type,
                                                 mask=pa.array(~valid))
    out = np.array(nearest.to_numpy(zero_copy_only=False), np.float64)
    a = np.asarray(left.to_numpy(zero_copy_only=False), np.float64)
    b = np.asarray(right.to_numpy(zero_copy_only=False), np.float64)
    out[both] = a[both] + (b[both] - a[both]) * m.weight[both]
    return pa.array(out, pa.float64(), mask=~valid)


def _is_linear(name: str, dtype: pa.DataType) -> bool:
    if pa.types.is_floating(dtype):
        return name not in NEAREST_FLOATS
    return pa.types.is_fixed_size_list(dtype) and pa.types.is_floating(dtype.value_type)


def _entities(column: pa.Array, m: Matching, keep: np.ndarray) -> pa.Array:
    """Nearest entity lists; cframes interpolated for entities present on both sides."""
    indices = pa.array(np.where(keep, m.nearest, 0))
    base = column.take(indices)
    out: list[Any] = base.to_pylist()
    todo = np.flatnonzero(keep & (m.weight > 0) & (m.left != m.right))
    if todo.size:
        lefts = column.take(pa.array(m.left[todo])).to_pylist()
        rights = column.take(pa.array(m.right[todo])).to_pylist()
        # every entity held on both sides, then one vectorised slerp for all of them
        where: list[tuple[int, int]] = []
        pairs: list[tuple[list[float], list[float], float]] = []
        for k, frame in enumerate(todo):
            if not out[frame] or not lefts[k] or not rights[k]:
                continue
            by_id_l = {e["id"]: e["cframe"] for e in lefts[k]}
            by_id_r = {e["id"]: e["cframe"] for e in rights[k]}
            for i, entity in enumerate(out[frame]):
                a, b = by_id_l.get(entity["id"]), by_id_r.get(entity["id"])
                if a is not None and b is not None:
                    where.append((frame, i))
                    pairs.append((a, b, m.weight[frame]))
        if pairs:
            a, b, w = zip(*pairs, strict=True)
            cframes = interpolate_cframes(np.array(a), np.array(b), np.array(w)).tolist()
            for (frame, i), cframe in zip(where, cframes, strict=True):
                out[frame][i] = {**out[frame][i], "cframe": cframe}
    for frame in np.flatnonzero(~keep):
        out[frame] = None
    return pa.array(out, column.type)


def state_at_frames(state: pa.Table, m: Matching) -> dict[str, pa.Array]:
    """Every state column (read_state names; `t` becomes `client_t`, `seq` is dropped)
    evaluated at the matched frames."""
    keep = m.nearest >= 0
    nearest_idx = pa.array(np.where(keep, m.nearest, 0), mask=~keep)
    out: dict[str, pa.Array] = {}
    for name in state.column_names:
        if name == "seq":
            continue
        column = state.column(name).combine_chunks()
        if name == "entities":
            array = _entities(column, m, keep)
        elif _is_linear(name, column.type):
            array = _interpolated(name, column, m, keep)
        else:
            array = column.take(nearest_idx)
        out["client_t" if name == "t" else name] = array
    return out
