"""Arrow schemas derived from the wire models, so the state log reads as typed columns."""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any

import pyarrow as pa
from pydantic import BaseModel

from capture._wire import Sample

_SCALARS: dict[type, pa.DataType] = {
    float: pa.float64(), int: pa.int64(), bool: pa.bool_(), str: pa.string(),
}


def _arrow_type(annotation: Any) -> pa.DataType:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _arrow_type(args[0])
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return _arrow_type(inner)
    if origin is typing.Literal:
        return _arrow_type(type(args[0]))
    if origin is tuple:
        return pa.list_(_arrow_type(args[0]), len(args))
    if origin is list:
        return pa.list_(_arrow_type(args[0]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return pa.struct([pa.field(name, _arrow_type(f.annotation))
                          for name, f in annotation.model_fields.items()])
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    raise TypeError(f"no arrow type for {annotation!r}")


@cache
def sample_struct() -> pa.StructType:
    """The arrow struct type of one wire Sample (nullable nested fields as in the model)."""
    return _arrow_type(Sample)


def flatten(table: pa.Table) -> pa.Table:
    """Flatten nested structs into dotted columns (`camera.cframe`), leaving lists as they are."""
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return table
