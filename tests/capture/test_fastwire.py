"""The compiled typed-dict validator agrees with the wire models on every input."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError, field_validator, model_validator

from capture import synthetic_sample
from capture._fastwire import typed_dict_validator
from capture._wire import Sample, SampleBatch
from tests.capture._rx import batch, json_values

_paths = st.sampled_from([
    "schema", "session", "seq_first", "sent_client", "sent_wall_ms", "probes", "dropped",
    "probes.0", "probes.0.t3", "probes.0.t1_ns", "dropped.0", "dropped.0.last", "extra",
    "samples", "samples.1", "samples.1.seq", "samples.1.t", "samples.1.dt", "samples.1.wall_ms",
    "samples.1.camera", "samples.1.camera.fov_y", "samples.1.camera.cframe",
    "samples.1.camera.subject", "samples.1.inputs", "samples.1.inputs.keys",
    "samples.1.inputs.gamepad", "samples.1.character", "samples.1.character.humanoid.state",
    "samples.1.character.root.size", "samples.1.character.ground", "samples.1.entities",
    "samples.1.entities.0.projection", "samples.1.entities.0.id", "samples.1.unknown",
])


def _batch_body(path: str | None = None, value: object = None, *, delete: bool = False) -> bytes:
    body = batch("s1", [10, 11, 12], probes=[{"t0": 1.0, "t1_ns": 5, "t2_ns": 6, "t3": 1.5}],
                 dropped=[{"first": 3, "last": 4}])
    body["samples"][1] = synthetic_sample(11, 2.0)  # entities and every optional part
    if path is not None:
        *parents, leaf = path.split(".")
        node = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        key = int(leaf) if isinstance(node, list) else leaf
        if delete:
            del node[key]
        else:
            node[key] = value
    return json.dumps(body).encode()  # stdlib json writes NaN and huge ints as they are


def _outcome(validate, body: bytes):
    try:
        return "valid", validate(body)
    except ValidationError as exc:
        same = {"model_type": "dict_type"}  # the same refusal, worded for a dict
        return "invalid", sorted((tuple(map(str, e["loc"])), same.get(e["type"], e["type"]))
                                 for e in exc.errors(include_url=False, include_input=False))


def _agree(body: bytes) -> None:
    model = _outcome(lambda b: SampleBatch.model_validate_json(b, strict=True), body)
    fast = _outcome(lambda b: typed_dict_validator(SampleBatch).validate_json(b, strict=True),
                    body)
    assert model[0] == fast[0]
    if model[0] == "invalid":
        assert model[1] == fast[1]
        return
    as_sent = [orjson.loads(Sample.__pydantic_serializer__.to_json(s, exclude_unset=True))
               for s in model[1].samples]
    assert [orjson.loads(json.dumps(s)) for s in fast[1]["samples"]] == as_sent


def test_a_valid_batch_gives_the_samples_as_sent():
    body = _batch_body()
    result = typed_dict_validator(SampleBatch).validate_json(body, strict=True)
    assert orjson.loads(orjson.dumps(result["samples"])) == json.loads(body)["samples"]
    assert result["probes"][0]["t3"] == 1.5 and result["dropped"] == [{"first": 3, "last": 4}]
    _agree(body)


def _agree_on(body: bytes) -> tuple[str, object]:
    """Both validators' verdict on `body` (after checking that they agree)."""
    _agree(body)
    return _outcome(lambda b: SampleBatch.model_validate_json(b, strict=True), body)


@pytest.mark.parametrize(("path", "value", "loc"), [
    ("seq_first", 11, ()),  # the batch's own after-validator
    ("samples.2.seq", 11, ()),
    ("probes.0.t3", 0.5, ("probes", "0")),  # a nested model's after-validator
    ("dropped.0.last", 2, ("dropped", "0")),
    ("samples.1.camera.fov_y", 180.0, ("samples", "1", "camera", "fov_y")),
    ("samples.1.inputs.keys", ["W"] * 65, ("samples", "1", "inputs", "keys")),
    ("samples.1.t", float("nan"), ("samples", "1", "t")),
    ("samples.1.camera.cframe", [0.0] * 11, ("samples", "1", "camera", "cframe", "11")),
    ("samples.1.wall_ms", 10 ** 30, ("samples", "1", "wall_ms")),  # past year 9999
])
def test_refusals_agree(path, value, loc):
    verdict, errors = _agree_on(_batch_body(path, value))
    assert verdict == "invalid" and [e[0] for e in errors] == [loc]


@pytest.mark.parametrize(("path", "verdict"), [
    ("samples.1.inputs", "valid"), ("samples.1.entities", "valid"), ("probes", "valid"),
    ("samples.1.camera", "invalid"), ("schema", "invalid"),
    ("samples.1.character.ground", "invalid")])
def test_missing_fields_agree(path, verdict):
    assert _agree_on(_batch_body(path, delete=True))[0] == verdict


@settings(max_examples=300, deadline=None)
@given(path=_paths, value=json_values)
def test_agrees_with_the_models_on_mutated_batches(path, value):
    _agree(_batch_body(path, value))


def test_models_it_cannot_compile_faithfully_are_refused():
    class Checked(BaseModel):
        name: str

        @field_validator("name")
        @classmethod
        def _upper(cls, value: str) -> str:
            return value.upper()

    with pytest.raises(TypeError, match="cannot compile"):
        typed_dict_validator(Checked)


def test_after_validators_see_defaults_of_fields_not_sent():
    class Part(BaseModel):
        size: float

    class Limited(BaseModel):
        parts: list[Part]
        limit: int = 2

        @model_validator(mode="after")
        def _within(self) -> Limited:
            if sum(p.size for p in self.parts) > self.limit:
                raise ValueError("too big")
            return self

    validator = typed_dict_validator(Limited)
    assert validator.validate_json(b'{"parts": [{"size": 1.5}]}') == {"parts": [{"size": 1.5}]}
    with pytest.raises(ValidationError, match="too big"):
        validator.validate_json(b'{"parts": [{"size": 1.5}, {"size": 1}]}')
    assert validator.validate_json(b'{"parts": [{"size": 2.5}], "limit": 3}')["limit"] == 3
    assert validator.validate_json(b'{"parts": [], "other": 1}') == {"parts": []}  # as the
    assert Limited.model_validate_json(b'{"parts": [], "other": 1}').parts == []  # model: ignored
