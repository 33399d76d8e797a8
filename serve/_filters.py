"""The state filter: `[{field, op, value}, ...]` (all must hold) compiled to a SQL predicate
with bound parameters.

Field names come only from a whitelist built from the label files' own parquet schema
(scalar columns) plus derived quantities computed in SQL from those columns (`airborne`,
the camera's yaw rate, speeds, the root's pixel position, a held key). A value is never
pasted into the SQL text: each becomes a `?` parameter, checked against the field's type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

Kind = Literal["number", "bool", "string", "key"]
Op = Literal["=", "!=", "<", "<=", ">", ">=", "between", "in"]
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr

OPS: dict[Kind, tuple[str, ...]] = {
    "number": ("=", "!=", "<", "<=", ">", ">=", "between", "in"),
    "bool": ("=", "!="),
    "string": ("=", "!=", "in"),
    "key": ("=", "in"),
}
MAX_CONDITIONS = 32
MAX_IN = 256


class FilterError(ValueError):
    """A filter names an unknown field, an operator its type does not allow, or a value of
    the wrong type; the message says which and what is accepted."""


class Condition(BaseModel):
    """One `field op value` term of a state filter."""

    model_config = ConfigDict(extra="forbid")

    field: StrictStr = Field(max_length=64)
    op: Op
    value: Scalar | list[Scalar] = Field(union_mode="left_to_right")


class StateFilter(BaseModel):
    """The request body of a state search: conditions joined with AND, and a page."""

    model_config = ConfigDict(extra="forbid")

    where: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)
    limit: int = Field(100, ge=1, le=500)
    offset: int = Field(0, ge=0, le=100_000_000)


@dataclass(frozen=True)
class FieldSpec:
    """A searchable field: its SQL expression over label columns, its kind and its meaning."""

    name: str
    sql: str
    kind: Kind
    unit: str = ""
    doc: str = ""


# yaw rate about world +Y (positive: turning left), deg/s: the camera-frame angular velocity
# rotated into the world, of which only the up component is needed: row 1 of the
# camera-to-world rotation of cam_quat_xyzw, (2(xy + wz), 1 - 2(x^2 + z^2), 2(yz - wx)),
# dotted with cam_angular_velocity (4 doubles read per row instead of T_cam_world's 16)
_Q, _W = '"cam_quat_xyzw"', '"cam_angular_velocity"'
_YAW = (f"degrees(2 * ({_Q}[1] * {_Q}[2] + {_Q}[4] * {_Q}[3]) * {_W}[1] + "
        f"(1 - 2 * ({_Q}[1] * {_Q}[1] + {_Q}[3] * {_Q}[3])) * {_W}[2] + "
        f"2 * ({_Q}[2] * {_Q}[3] - {_Q}[4] * {_Q}[1]) * {_W}[3])")
_NORM3 = "sqrt({c}[1] * {c}[1] + {c}[2] * {c}[2] + {c}[3] * {c}[3])"

DERIVED: tuple[tuple[FieldSpec, frozenset[str]], ...] = (
    (FieldSpec("airborne", "NOT \"grounded\"", "bool", "",
               "the character is off the ground (not grounded)"), frozenset({"grounded"})),
    (FieldSpec("cam_yaw_rate", _YAW, "number", "deg/s",
               "camera yaw rate about world up, positive turning left"),
     frozenset({"cam_quat_xyzw", "cam_angular_velocity"})),
    (FieldSpec("cam_turn_rate", f"abs({_YAW})", "number", "deg/s",
               "camera yaw rate either way"), frozenset({"cam_quat_xyzw", "cam_angular_velocity"})),
    (FieldSpec("cam_rotation_rate", "degrees(" + _NORM3.format(c='"cam_angular_velocity"') + ")",
               "number", "deg/s", "camera angular speed about any axis"),
     frozenset({"cam_angular_velocity"})),
    (FieldSpec("cam_speed", _NORM3.format(c='"cam_velocity"'), "number", "studs/s",
               "camera linear speed"), frozenset({"cam_velocity"})),
    (FieldSpec("root_x", "\"root_px\"[1]", "number", "px", "root point column"),
     frozenset({"root_px"})),
    (FieldSpec("root_y", "\"root_px\"[2]", "number", "px", "root point row"),
     frozenset({"root_px"})),
    (FieldSpec("key", "\"keys\"", "key", "", "a key held (Enum.KeyCode name)"),
     frozenset({"keys"})),
)


def _kind(type_: pa.DataType) -> Kind | None:
    if pa.types.is_boolean(type_):
        return "bool"
    if pa.types.is_integer(type_) or pa.types.is_floating(type_):
        return "number"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "string"
    return None


def fields_from_schema(schema: pa.Schema) -> dict[str, FieldSpec]:
    """The searchable fields of label files with this schema: scalar columns, then the
    derived quantities whose source columns are all present."""
    out: dict[str, FieldSpec] = {}
    for column in schema:
        kind = _kind(column.type)
        if kind is not None and column.name.isidentifier():
            out[column.name] = FieldSpec(column.name, f'"{column.name}"', kind)
    for spec, needs in DERIVED:
        if needs <= set(schema.names):
            out[spec.name] = spec
    return out


def _check_value(name: str, kind: Kind, value: Any) -> Any:
    ok = {"number": isinstance(value, int | float) and not isinstance(value, bool),
          "bool": isinstance(value, bool),
          "string": isinstance(value, str), "key": isinstance(value, str)}[kind]
    if not ok or (isinstance(value, str) and len(value) > 256):
        expected = {"number": "a number", "bool": "true or false", "string": "a string",
                    "key": "a key name"}[kind]
        raise FilterError(f"{name}: {value!r} is not {expected}")
    return value


def _term(spec: FieldSpec, cond: Condition) -> tuple[str, list[Any]]:
    if cond.op not in OPS[spec.kind]:
        raise FilterError(f"{spec.name} ({spec.kind}) does not take {cond.op!r}; use one "
                          f"of {', '.join(OPS[spec.kind])}")
    if cond.op == "between":
        if not isinstance(cond.value, list) or len(cond.value) != 2:
            raise FilterError(f"{spec.name} between: the value must be [low, high]")
        low, high = (_check_value(spec.name, spec.kind, v) for v in cond.value)
        return f"({spec.sql} BETWEEN ? AND ?)", [low, high]
    if cond.op == "in":
        if not isinstance(cond.value, list) or not 1 <= len(cond.value) <= MAX_IN:
            raise FilterError(f"{spec.name} in: the value must be a list of 1 to {MAX_IN} "
                              "values")
        values = [_check_value(spec.name, spec.kind, v) for v in cond.value]
        if spec.kind == "key":
            return f"list_has_any({spec.sql}, ?::VARCHAR[])", [values]
        return f"({spec.sql} IN ({', '.join('?' * len(values))}))", values
    if isinstance(cond.value, list):
        raise FilterError(f"{spec.name} {cond.op}: the value must be one value, not a list")
    value = _check_value(spec.name, spec.kind, cond.value)
    if spec.kind == "key":
        return f"list_contains({spec.sql}, ?)", [value]
    return f"({spec.sql} {cond.op} ?)", [value]


def compile_filter(conditions: list[Condition], fields: dict[str, FieldSpec]
                   ) -> tuple[str, list[Any]]:
    """A SQL predicate (`TRUE` for no condition) and its parameters, in order."""
    parts, params = [], []
    for cond in conditions:
        spec = fields.get(cond.field)
        if spec is None:
            raise FilterError(f"unknown field {cond.field!r}; searchable fields: "
                              f"{', '.join(sorted(fields))}")
        sql, values = _term(spec, cond)
        parts.append(sql)
        params.extend(values)
    return (" AND ".join(parts) or "TRUE"), params
