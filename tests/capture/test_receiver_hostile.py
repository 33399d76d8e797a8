"""Hostile input: every refusal has its status and leaves the session's files untouched."""

from __future__ import annotations

import gzip
import http.client
import json
import zlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from capture import ReceiverThread, Session, SessionWriter
from capture._wire import ErrorReply, SampleBatch
from tests.capture._rx import batch, hello, json_values, post, request, snapshot
from tests.conftest import make_sample

LIMIT = 256 * 1024
TOKEN = "t0ken-42"


@pytest.fixture(scope="module")
def rx(tmp_path_factory):
    writer = SessionWriter.create(tmp_path_factory.mktemp("hostile"), "s1")
    with ReceiverThread(writer, port=0, max_body_bytes=LIMIT) as receiver:
        assert post(receiver.port, "/v1/hello", hello()).status == 200
        assert post(receiver.port, "/v1/samples", batch("s1", [0, 1, 2])).status == 200
        yield receiver, writer
    writer.close()


def _valid() -> bytes:
    return orjson.dumps(batch("s1", [10, 11, 12, 13]))


def _mutated(**changes) -> bytes:
    body = batch("s1", [10, 11, 12, 13])
    body.update(changes)
    return orjson.dumps(body)


def _sample_changed(index: int, path: str, value) -> bytes:
    """A valid batch with one field replaced; stdlib json writes NaN and huge ints as is."""
    body = batch("s1", [10, 11, 12, 13])
    node = body["samples"][index]
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return json.dumps(body).encode()


def _bomb(decoded_bytes: int) -> bytes:
    deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b" " * (1 << 20)
    parts = [deflate.compress(b'{"schema": "stpe.sample/1", "pad": "')]
    parts += [deflate.compress(chunk) for _ in range(decoded_bytes >> 20)]
    return b"".join(parts) + deflate.flush()


JSON = {"Content-Type": "application/json"}
GZIP = {**JSON, "Content-Encoding": "gzip"}

CASES = {
    # malformed JSON: 400
    "truncated": (_valid()[:-7], JSON, 400, None),
    "not json": (b"hello there", JSON, 400, None),
    "empty": (b"", JSON, 400, None),
    "binary": (b"\xff\xfe\x00\x01", JSON, 400, None),
    "trailing garbage": (_valid() + b"}", JSON, 400, None),
    "lone surrogate": (_sample_changed(0, "camera.type", "\ud800"), JSON, 400, None),
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, JSON, 400, None),
    # schema violations: 422 with the field path
    "top-level array": (b"[1, 2, 3]", JSON, 422, None),
    "missing field": (orjson.dumps({"schema": "stpe.sample/1"}), JSON, 422, "session"),
    "wrong schema": (_mutated(schema="stpe.sample/9"), JSON, 422, "schema"),
    "extra field": (_mutated(evil=1), JSON, 422, "evil"),
    "string fov": (_sample_changed(3, "camera.fov_y", "70"), JSON, 422,
                   "samples.3.camera.fov_y"),
    "fov out of range": (_sample_changed(1, "camera.fov_y", 500.0), JSON, 422,
                         "samples.1.camera.fov_y"),
    "string seq": (_sample_changed(0, "seq", "10"), JSON, 422, "samples.0.seq"),
    "float seq": (_sample_changed(0, "seq", 10.5), JSON, 422, "samples.0.seq"),
    "bool as number": (_sample_changed(2, "dt", True), JSON, 422, "samples.2.dt"),
    "short cframe": (_sample_changed(2, "camera.cframe", [1.0, 2.0]), JSON, 422,
                     "samples.2.camera.cframe.2"),
    "negative seq": (_sample_changed(0, "seq", -1), JSON, 422, "samples.0.seq"),
    "seq too big": (_sample_changed(3, "seq", 2**60), JSON, 422, "samples.3.seq"),
    "repeated seq": (orjson.dumps(batch("s1", [10, 11, 11])), JSON, 422, None),
    "decreasing seq": (orjson.dumps(batch("s1", [12, 11])), JSON, 422, None),
    "seq_first mismatch": (_mutated(seq_first=9), JSON, 422, None),
    "too many probes": (_mutated(probes=[{"t0": 1.0, "t1_ns": 1, "t2_ns": 2, "t3": 1.0}] * 65),
                        JSON, 422, "probes"),
    "too many drops": (_mutated(dropped=[{"first": 1, "last": 1}] * 65), JSON, 422,
                       "dropped"),
    "too many samples": (orjson.dumps(batch("s1", list(range(20, 1045)))), JSON, 413, None),
    "too many entities": (_sample_changed(0, "entities",
                                          [make_sample(0, 0)["entities"][0]] * 257),
                          JSON, 422, "samples.0.entities"),
    "huge name": (_sample_changed(0, "camera.type", "x" * 5000), JSON, 422,
                  "samples.0.camera.type"),
    # numbers beyond their documented range (docs/protocol.md, "Ranges")
    "wall_ms 2**70": (_sample_changed(1, "wall_ms", 2**70), JSON, 422, "samples.1.wall_ms"),
    "wall_ms past year 9999": (_sample_changed(1, "wall_ms", 253_402_300_800_000), JSON, 422,
                               "samples.1.wall_ms"),
    "sent_wall_ms 2**70": (json.dumps(batch("s1", [10], sent_wall_ms=2**70)).encode(), JSON,
                           422, "sent_wall_ms"),
    "sent_client 1e300": (_mutated(sent_client=1e300), JSON, 422, "sent_client"),
    "position 1e300": (_sample_changed(0, "camera.cframe", [1e300] + [0.0] * 11), JSON, 422,
                       "samples.0.camera.cframe.0"),
    "velocity -1e13": (_sample_changed(0, "character.root.velocity", [-1e13, 0.0, 0.0]), JSON,
                       422, "samples.0.character.root.velocity.0"),
    "t 1e13": (_sample_changed(0, "t", 1e13), JSON, 422, "samples.0.t"),
    "probe t1_ns 2**64": (json.dumps(batch("s1", [10], probes=[
        {"t0": 1.0, "t1_ns": 2**64, "t2_ns": 2**64, "t3": 1.0}])).encode(), JSON, 422,
        "probes.0.t1_ns"),
    # dropped ranges may only name seqs already taken: below the batch's first seq
    "drop ahead of the batch": (orjson.dumps(batch("s1", [10, 11], dropped=[
        {"first": 6, "last": 1_000_000}])), JSON, 422, None),
    "drop of a sent seq": (orjson.dumps(batch("s1", [10, 11], dropped=[
        {"first": 10, "last": 10}])), JSON, 422, None),
    "drop around a sent seq": (orjson.dumps(batch("s1", [10, 12], dropped=[
        {"first": 9, "last": 11}])), JSON, 422, None),
    "empty batch dropping its first seq": (orjson.dumps(batch("s1", [], seq_first=20, dropped=[
        {"first": 20, "last": 20}])), JSON, 422, None),
    "empty batch dropping ahead": (orjson.dumps(batch("s1", [], seq_first=20, dropped=[
        {"first": 15, "last": 25}])), JSON, 422, None),
    "probe out of order": (_mutated(probes=[{"t0": 5.0, "t1_ns": 2, "t2_ns": 1, "t3": 6.0}]),
                           JSON, 422, "probes.0"),
    "probe back in time": (_mutated(probes=[{"t0": 6.0, "t1_ns": 1, "t2_ns": 2, "t3": 5.0}]),
                           JSON, 422, "probes.0"),
    # NaN and infinity, as floats and as bare JSON tokens: 422
    "NaN token": (_valid().replace(b'"fov_y":70.0', b'"fov_y":NaN', 1), JSON, 422,
                  "samples.0.camera.fov_y"),
    "Infinity token": (_valid().replace(b'"t":0.2', b'"t":Infinity', 1), JSON, 422,
                       "samples.2.t"),
    "-Infinity token": (_valid().replace(b'"health":100.0', b'"health":-Infinity', 1), JSON,
                        422, "samples.0.character.humanoid.health"),
    "overflow to inf": (_valid().replace(b'"dt":', b'"dt":1e999,"_":', 1), JSON, 422, None),
    # sizes and encodings
    "oversize": (orjson.dumps(batch("s1", [10], pad="x" * LIMIT)), JSON, 413, None),
    "gzip bomb": (_bomb(64 << 20), GZIP, 413, None),
    "gzip truncated": (gzip.compress(_valid())[:-20], GZIP, 400, None),
    "gzip corrupt": (b"\x1f\x8b" + b"\x00" * 40, GZIP, 400, None),
    "gzip twice": (gzip.compress(_valid()) * 2, GZIP, 400, None),
    "brotli": (_valid(), {**JSON, "Content-Encoding": "br"}, 415, None),
    "text/plain": (_valid(), {"Content-Type": "text/plain"}, 415, None),
    "form": (_valid(), {"Content-Type": "application/x-www-form-urlencoded"}, 415, None),
    "no content type": (_valid(), {}, 415, None),
    # callers that are not the plugin
    "browser origin": (_valid(), {**JSON, "Origin": "https://evil.example"}, 403, None),
    "null origin": (_valid(), {**JSON, "Origin": "null"}, 403, None),
    "cross-site fetch": (_valid(), {**JSON, "Sec-Fetch-Site": "cross-site"}, 403, None),
    "foreign host": (_valid(), {**JSON, "Host": "evil.example"}, 403, None),
    "rebinding host": (_valid(), {**JSON, "Host": "127.0.0.1.evil.example:34873"}, 403, None),
    "unknown session": (orjson.dumps(batch("nope", [10])), JSON, 404, "session"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_batch_is_refused_and_nothing_is_written(rx, name):
    receiver, writer = rx
    body, headers, status, path = CASES[name]
    before = snapshot(writer)
    reply = request(receiver.port, "POST", "/v1/samples", body, headers)
    assert reply.status == status, reply.body
    error = ErrorReply.model_validate(reply.body).error
    assert error.message and error.code
    if path is not None:
        assert error.path == path
    assert snapshot(writer) == before


def test_oversize_chunked_body_without_length_is_refused(rx):
    receiver, writer = rx
    before = snapshot(writer)
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=30)
    try:
        conn.request("POST", "/v1/samples", body=iter([b"[" + b"0," * 1000] * 200),
                     headers={**JSON, "Transfer-Encoding": "chunked"}, encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 413
        assert orjson.loads(response.read())["error"]["code"] == "body_too_large"
    finally:
        conn.close()
    assert snapshot(writer) == before


@pytest.mark.parametrize(("path", "payload", "status"), [
    ("/v1/hello", hello(session="other"), 404),
    ("/v1/hello", {**hello(), "datamodel": "browser"}, 422),
    ("/v1/hello", b"x" * (64 * 1024), 413),
    ("/v1/bye", {"session": "other"}, 404),
    ("/v1/bye", {"session": "s1", "last_seq": -5}, 422),
    ("/v1/bye", b'{"session": "s1", "last_seq": 1180591620717411303424}', 422),
    ("/v1/hello", json.dumps({**hello(), "place_id": 2**70}).encode(), 422),
    ("/v1/hello", {**hello(), "place_id": -1}, 422),
    ("/v1/hello", json.dumps({**hello(), "wall_ms": 2**64}).encode(), 422),
    ("/v1/hello", {**hello(), "client_clock": 1e300}, 422),
    ("/v1/hello", {**hello(), "viewport": [1e300, 720.0]}, 422),
    ("/v1/sync", {"session": "other", "t0": 1.0}, 404),
    ("/v1/sync", {"t0": -1.0}, 422),
    ("/v1/sync", b'{"t0": NaN}', 422),
])
def test_other_endpoints_refuse_bad_requests(rx, path, payload, status):
    receiver, writer = rx
    before = snapshot(writer)
    assert post(receiver.port, path, payload).status == status
    assert snapshot(writer) == before


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/v1/samples", 405), ("POST", "/v1/health", 405), ("DELETE", "/v1/hello", 405),
    ("GET", "/", 404), ("GET", "/v2/health", 404), ("POST", "/v1/../v1/samples", 404),
])
def test_wrong_method_or_path_is_a_json_error(rx, method, path, status):
    receiver, writer = rx
    before = snapshot(writer)
    reply = request(receiver.port, method, path, b"{}", JSON)
    assert reply.status == status
    assert ErrorReply.model_validate(reply.body).error.code in ("not_found", "method_not_allowed")
    assert snapshot(writer) == before


def test_token_is_required_when_set(tmp_path):
    with SessionWriter.create(tmp_path, "s1") as writer, \
            ReceiverThread(writer, port=0, token=TOKEN) as receiver:
        before = snapshot(writer)
        for token in (None, "", "t0ken", TOKEN + "x", "t0ken-\u00e9"):
            reply = post(receiver.port, "/v1/samples", batch("s1", [0]), token=token)
            assert reply.status == 401
            assert reply.body["error"]["code"] == "token_refused"
        assert request(receiver.port, "GET", "/v1/health").status == 401
        assert snapshot(writer) == before
        assert post(receiver.port, "/v1/samples", batch("s1", [0]), token=TOKEN).status == 200


_leaf_paths = st.sampled_from([
    "seq", "t", "dt", "wall_ms", "camera.fov_y", "camera.cframe", "camera.viewport",
    "camera.type", "camera.root_projection", "inputs.keys", "inputs.mouse_delta",
    "character.humanoid.jump", "character.root.velocity", "character.ground.distance",
    "entities", "character",
])


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, 3), path=_leaf_paths, value=json_values)
def test_the_receiver_agrees_with_the_schema_on_mutated_batches(rx, index, path, value):
    receiver, writer = rx
    body = _sample_changed(index, path, value)
    try:
        SampleBatch.model_validate_json(body, strict=True)
        valid = True
    except ValidationError:
        valid = False
    before = snapshot(writer)
    reply = post(receiver.port, "/v1/samples", body)
    assert reply.status == (200 if valid else 422), reply.body
    if not valid:
        assert snapshot(writer) == before


def test_a_drop_ahead_of_the_batch_never_hides_later_samples(tmp_path):
    with SessionWriter.create(tmp_path, "s") as writer, \
            ReceiverThread(writer, port=0) as receiver:
        assert post(receiver.port, "/v1/samples", batch("s", [0, 1, 2, 3, 4, 5])).status == 200
        attack = post(receiver.port, "/v1/samples",
                      batch("s", [6], dropped=[{"first": 6, "last": 1_000_000}]))
        later = [post(receiver.port, "/v1/samples", batch("s", [s])) for s in range(6, 24)]
        stored = Session.open(writer.path).read_state()["seq"].to_pylist()
    assert attack.status == 422 and attack.body["error"]["path"] is None
    assert [r.body["accepted"] for r in later] == [1] * 18
    assert stored == list(range(24))


def test_numbers_at_the_edge_of_their_range_are_stored_and_read_back(tmp_path):
    sample = make_sample(2**53 - 1, 1.0)
    body = {**batch("s", []), "seq_first": 2**53 - 1, "samples": [sample],
            "sent_wall_ms": 253_402_300_799_999}
    sample["wall_ms"], sample["t"] = 253_402_300_799_999, 1e12
    sample["camera"]["cframe"][0] = -1e12
    sample["character"]["root"]["velocity"] = [1e12, -1e12, 0.0]
    with SessionWriter.create(tmp_path, "s") as writer, \
            ReceiverThread(writer, port=0) as receiver:
        reply = post(receiver.port, "/v1/samples", body)
        table = Session.open(writer.path).read_state()
    assert reply.status == 200 and reply.body["accepted"] == 1
    row = table.to_pylist()[0]
    assert row["seq"] == 2**53 - 1 and row["wall_ms"] == 253_402_300_799_999
    assert row["t"] == 1e12
    assert row["camera.cframe"][0] == -1e12
    assert row["character.root.velocity"] == [1e12, -1e12, 0.0]


_numbers = (st.integers(-2**80, 2**80) | st.floats(allow_nan=False, allow_infinity=False)
            | st.sampled_from([2**53, 2**63, 2**64, 1e12, 1e13, 1e308, -1e308]))
_numeric_paths = st.sampled_from([
    "seq", "t", "dt", "wall_ms", "camera.fov_y", "camera.cframe.0", "camera.cframe.5",
    "camera.viewport.1", "camera.root_projection.2", "inputs.mouse_delta.0",
    "character.humanoid.health", "character.humanoid.walk_speed", "character.root.size.2",
    "character.ground.distance", "entities.0.projection.0",
])


@settings(max_examples=40, deadline=None)
@given(path=_numeric_paths, value=_numbers)
def test_whatever_is_accepted_can_be_read_back(tmp_path_factory, path, value):
    body = batch("s", [0])
    node = body["samples"][0]
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(leaf)] = value
    else:
        node[leaf] = value
    with SessionWriter.create(tmp_path_factory.mktemp("edge"), "s") as writer, \
            ReceiverThread(writer, port=0) as receiver:
        reply = post(receiver.port, "/v1/samples", json.dumps(body).encode())
        if reply.status == 200:
            assert Session.open(writer.path).read_state().num_rows == 1
        else:
            assert reply.status == 422 and not (writer.path / "state.jsonl").exists()


@settings(max_examples=40, deadline=None)
@given(fraction=st.floats(0.0, 1.0, exclude_max=True), gzipped=st.booleans())
def test_any_truncation_is_refused(rx, fraction, gzipped):
    receiver, writer = rx
    whole = gzip.compress(_valid()) if gzipped else _valid()
    body = whole[:int(len(whole) * fraction)]
    before = snapshot(writer)
    reply = request(receiver.port, "POST", "/v1/samples", body, GZIP if gzipped else JSON)
    assert reply.status == 400
    assert snapshot(writer) == before
