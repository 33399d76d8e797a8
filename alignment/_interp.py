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
from alignment._quat import interpolate_cframes

NEAREST_FLOATS = frozenset({"dt"})


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
        for k, frame in enumerate(todo):
            if not out[frame] or not lefts[k] or not rights[k]:
                continue
            by_id_l = {e["id"]: e for e in lefts[k]}
            by_id_r = {e["id"]: e for e in rights[k]}
            w = np.array([m.weight[frame]])
            entities = []
            for entity in out[frame]:
                a, b = by_id_l.get(entity["id"]), by_id_r.get(entity["id"])
                if a is not None and b is not None:
                    cf = interpolate_cframes(np.array([a["cframe"]]), np.array([b["cframe"]]), w)
                    entity = {**entity, "cframe": cf[0].tolist()}
                entities.append(entity)
            out[frame] = entities
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
