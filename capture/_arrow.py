"""Arrow schemas derived from the wire models, so the state log reads as typed columns."""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json
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


@cache
def state_schema() -> pa.Schema:
    """One state.jsonl record as arrow: the arrival stamps and the sample."""
    return pa.schema([("arrival_mono_ns", pa.int64()), ("arrival_wall_ns", pa.int64()),
                      ("sample", sample_struct())])


def _variable_lists(type_: pa.DataType) -> pa.DataType:
    """`type_` with fixed-size lists as plain lists (what arrow's JSON reader can fill)."""
    if pa.types.is_list(type_) or pa.types.is_fixed_size_list(type_):
        return pa.list_(_variable_lists(type_.value_type))
    if pa.types.is_struct(type_):
        return pa.struct([pa.field(f.name, _variable_lists(f.type)) for f in type_])
    return type_


def _flat_by_seq(table: pa.Table) -> pa.Table:
    table = flatten(table.cast(state_schema()))
    table = table.rename_columns([c.removeprefix("sample.") for c in table.column_names])
    return table.sort_by("seq")


def _read_json(lines: bytes, schema: pa.Schema) -> pa.Table:
    """JSON lines into `schema`'s columns with arrow's multithreaded reader (fields outside
    the schema are ignored); pa.ArrowException for anything it cannot read."""
    return pa_json.read_json(
        pa.BufferReader(lines),
        read_options=pa_json.ReadOptions(block_size=16 << 20),
        parse_options=pa_json.ParseOptions(explicit_schema=schema,
                                           unexpected_field_behavior="ignore"))


def state_table(lines: bytes) -> pa.Table:
    """Complete state.jsonl lines as one flat table sorted by seq, parsed by arrow's
    multithreaded JSON reader (a fraction of the time and memory of Python objects);
    pa.ArrowException for anything it cannot read, which `state_table_from_records` reads
    or names."""
    reading = pa.schema([(f.name, _variable_lists(f.type)) for f in state_schema()])
    return _flat_by_seq(_read_json(lines, reading))


def state_table_from_records(records: list[dict[str, Any]]) -> pa.Table:
    """`state_table` from already parsed records."""
    return _flat_by_seq(pa.Table.from_pylist(
        [{"arrival_mono_ns": r["arrival_mono_ns"], "arrival_wall_ns": r["arrival_wall_ns"],
          "sample": r["sample"]} for r in records], schema=state_schema()))


FRAME_COLUMNS = ("index", "pts_us", "grab_start_ns", "grab_end_ns", "wall_ns", "dropped_before")
_FRAMES = pa.schema([(name, pa.int64()) for name in FRAME_COLUMNS])


def frames_table(lines: bytes) -> pa.Table:
    """Complete frames.jsonl lines as the frame table (a missing value reads 0), parsed by
    arrow's JSON reader; pa.ArrowException for anything it cannot read."""
    table = _read_json(lines, _FRAMES)
    return pa.table({name: table.column(name).fill_null(0).combine_chunks()
                     for name in FRAME_COLUMNS})


def frames_table_from_records(records: list[dict[str, Any]]) -> pa.Table:
    """`frames_table` from already parsed records."""
    return pa.table({name: pa.array([r.get(name) or 0 for r in records], pa.int64())
                     for name in FRAME_COLUMNS})
