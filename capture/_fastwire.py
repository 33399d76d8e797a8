"""A faster validator for sample batches, compiled from the wire models themselves.

Validating into pydantic models builds a dozen model instances per sample, and serializing
them back to JSON costs half as much again. `typed_dict_validator(model)` takes a model's
core schema and swaps every model for a typed dict with the same fields, constraints,
aliases, config and after-validators: the same accept/refuse decisions and the same errors
(possibly in another order; a non-object where a model belongs reads `dict_type`, not
`model_type`), but plain dicts out, holding exactly the fields that were sent, which orjson
writes back fast (the receiver uses it for `SampleBatch`).

The models stay the one definition of the protocol; this module only changes what
validated data is built from them.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from pydantic_core import SchemaValidator


class _AttributeView:
    """A validated typed dict read the way a model's after-validator reads its model:
    attributes, nested views, and the field's default where the field was not sent."""

    __slots__ = ("_data", "_model")

    def __init__(self, data: dict[str, Any], model: type[BaseModel]) -> None:
        self._data = data
        self._model = model

    def __getattr__(self, name: str) -> Any:
        field = self._model.model_fields.get(name)
        if field is None:
            raise AttributeError(name)
        if name not in self._data:
            return field.get_default(call_default_factory=True)
        return _view(self._data[name], _model_in(field.annotation))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (directly, in a list, or optionally), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) not in (list, typing.Union, types.UnionType):
        return None
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _view(value: Any, model: type[BaseModel] | None) -> Any:
    if model is None:
        return value
    if isinstance(value, dict):
        return _AttributeView(value, model)
    if isinstance(value, list):
        return [_view(v, model) for v in value]
    return value


def _after(function: Callable[[Any], Any], model: type[BaseModel]) -> Callable[[Any], Any]:
    """Run a model's after-validator on the typed dict; keep the dict."""

    def check(data: dict[str, Any]) -> dict[str, Any]:
        function(_AttributeView(data, model))
        return data

    return check


def _typed_dict(model_schema: dict[str, Any]) -> dict[str, Any]:
    fields_schema = model_schema["schema"]
    if fields_schema.get("type") != "model-fields" or fields_schema.get("computed_fields"):
        raise TypeError(f"cannot compile {model_schema.get('cls')}: unsupported model schema")
    fields = {}
    for name, field in fields_schema["fields"].items():
        inner = _convert(field["schema"])
        entry: dict[str, Any] = {"type": "typed-dict-field", "required": True}
        if inner.get("type") == "default":  # optional: absent stays absent, as sent
            inner, entry["required"] = inner["schema"], False
        entry["schema"] = inner
        if "validation_alias" in field:
            entry["validation_alias"] = field["validation_alias"]
        fields[name] = entry
    config = model_schema.get("config", {})
    out: dict[str, Any] = {"type": "typed-dict", "fields": fields, "config": config,
                           "extra_behavior": config.get("extra_fields_behavior", "ignore")}
    if "ref" in model_schema:
        out["ref"] = model_schema["ref"]
    return out


def _convert(schema: Any) -> Any:
    """The schema with every model a typed dict (recursively)."""
    if isinstance(schema, list):
        return [_convert(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind == "model":
        return _typed_dict(schema)
    if kind == "function-after" and schema["schema"].get("type") == "model":
        model = schema["schema"]["cls"]
        function = schema["function"]
        if function.get("type") != "no-info":
            raise TypeError(f"cannot compile {model.__name__}: its validator takes info")
        out = {"type": "function-after", "schema": _typed_dict(schema["schema"]),
               "function": {"type": "no-info",
                            "function": _after(function["function"], model)}}
        if "ref" in schema:
            out["ref"] = schema["ref"]
        return out
    if (kind is not None and kind.startswith("function")) or kind == "model-fields":
        raise TypeError(f"cannot compile a {kind} schema")
    return {k: _convert(v) for k, v in schema.items()}


@functools.cache
def typed_dict_validator(model: type[BaseModel]) -> SchemaValidator:
    """`model` as a validator of typed dicts (see the module docstring); TypeError for a
    model whose schema it cannot compile faithfully (field or before/wrap validators)."""
    return SchemaValidator(_convert(model.__pydantic_core_schema__))
