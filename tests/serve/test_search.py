"""State and caption searches over real label files, against answers computed with pandas
from the files themselves and from the known camera motion of `search_kit`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from serve._filters import Condition, FilterError, StateFilter, compile_filter, fields_from_schema
from serve._query import search_captions, search_state
from tests.serve.search_kit import turning_session, yaw_rate_at


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("search")
    return {"alpha": turning_session(root, "alpha", start_t=2.0),
            "beta": turning_session(root, "beta", start_t=3.0),
            "unlabelled": root / "nothing-here"}


def _frames(sessions: dict[str, Path]) -> pd.DataFrame:
    parts = []
    for sid, path in sessions.items():
        if (path / "labels.parquet").is_file():
            df = pq.read_table(path / "labels.parquet").to_pandas()
            df["session"] = sid
            parts.append(df)
    return pd.concat(parts, ignore_index=True)


def _search(sessions: dict[str, Path], where: list[dict], **page: int) -> list[tuple]:
    query = StateFilter.model_validate({"where": where, **page})
    return [(h.session, h.frame) for h in search_state(sessions, query).hits]


def test_airborne_and_camera_turning_fast(sessions: dict[str, Path]) -> None:
    df = _frames(sessions)
    truth = df["frame_index"].map(yaw_rate_at).abs()
    expected = df[(~df["grounded"]) & (truth > 30.0)]
    want = sorted(zip(expected["session"], expected["frame_index"], strict=True))
    assert len(want) > 10 and len({s for s, _ in want}) == 2  # both sessions contribute
    got = _search(sessions, [{"field": "airborne", "op": "=", "value": True},
                             {"field": "cam_turn_rate", "op": ">", "value": 30}], limit=500)
    assert got == want


def test_signed_yaw_rate_between_and_paging(sessions: dict[str, Path]) -> None:
    df = _frames(sessions)
    left = df[df["frame_index"].map(yaw_rate_at).between(40, 50)]
    want = sorted(zip(left["session"], left["frame_index"], strict=True))
    where = [{"field": "cam_yaw_rate", "op": "between", "value": [40, 50]}]
    assert _search(sessions, where, limit=500) == want
    pages = [_search(sessions, where, limit=7, offset=o) for o in range(0, len(want), 7)]
    assert [hit for page in pages for hit in page] == want
    query = StateFilter.model_validate({"where": where, "limit": 3})
    assert search_state(sessions, query).total == len(want)


def test_columns_strings_keys_and_in(sessions: dict[str, Path]) -> None:
    df = _frames(sessions)
    space = df[df["keys"].map(lambda k: "Space" in list(k)) & (df["speed"] < 7.15)]
    want = sorted(zip(space["session"], space["frame_index"], strict=True))
    assert want
    assert _search(sessions, [{"field": "key", "op": "=", "value": "Space"},
                              {"field": "speed", "op": "<", "value": 7.15}], limit=500) == want
    picked = df[df["humanoid_state"].isin(["Jumping", "Freefall"]) & (df["frame_index"] != 40)]
    want = sorted(zip(picked["session"], picked["frame_index"], strict=True))
    assert _search(sessions, [
        {"field": "humanoid_state", "op": "in", "value": ["Jumping", "Freefall"]},
        {"field": "frame_index", "op": "!=", "value": 40}], limit=500) == want


@pytest.mark.parametrize(("where", "message"), [
    ([{"field": "nope", "op": "=", "value": 1}], "unknown field 'nope'"),
    ([{"field": "speed", "op": "=", "value": "fast"}], "is not a number"),
    ([{"field": "speed", "op": "=", "value": True}], "is not a number"),
    ([{"field": "airborne", "op": "<", "value": True}], "does not take '<'"),
    ([{"field": "speed", "op": "between", "value": [1]}], "[low, high]"),
    ([{"field": "speed", "op": "in", "value": []}], "list of 1 to"),
    ([{"field": "speed", "op": ">", "value": [1, 2]}], "not a list"),
    ([{"field": "caption\" OR 1=1 --", "op": "=", "value": "x"}], "unknown field"),
    ([{"field": "K", "op": "=", "value": 1}], "unknown field 'K'"),  # a list column
])
def test_bad_filters_are_refused_by_name(sessions: dict[str, Path], where: list[dict],
                                         message: str) -> None:
    with pytest.raises(FilterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _search(sessions, where)


@pytest.mark.parametrize("body", [
    {"where": [{"field": "speed", "op": "LIKE", "value": 1}]},
    {"where": [{"field": "speed", "op": "=", "value": {"x": 1}}]},
    {"where": [{"field": "speed", "op": "=", "value": 1, "sql": "DROP"}]},
    {"where": [], "limit": 0}, {"where": [], "limit": 10_000}, {"where": [], "offset": -1},
    {"where": [{"field": "speed", "op": "=", "value": 1}] * 33},
])
def test_malformed_bodies_fail_validation(body: dict) -> None:
    with pytest.raises(ValidationError):
        StateFilter.model_validate(body)


def test_sql_in_values_is_only_a_value(sessions: dict[str, Path]) -> None:
    hostile = "x') OR 1=1; DROP TABLE f; --"
    assert _search(sessions, [{"field": "humanoid_state", "op": "=", "value": hostile}]) == []
    assert _search(sessions, [{"field": "key", "op": "in", "value": [hostile, "'"]}]) == []
    assert search_captions(sessions, "%", 10, 0).hits == ()  # no LIKE wildcard either


def test_no_condition_lists_every_frame(sessions: dict[str, Path]) -> None:
    df = _frames(sessions)
    page = search_state(sessions, StateFilter(where=[], limit=500))
    assert page.total == len(df)
    first = page.hits[0]
    row = df[(df["session"] == first.session) & (df["frame_index"] == first.frame)].iloc[0]
    assert first.t == pytest.approx(row["t"])


def test_caption_text_case_insensitive_with_model_captions(sessions: dict[str, Path]) -> None:
    df = _frames(sessions)
    hits = df[df["caption"].str.lower().str.contains("turns left at 90")]
    want = sorted(zip(hits["session"], hits["frame_index"], strict=True))
    assert want
    page = search_captions(sessions, "TURNS Left at 90", 500, 0)
    assert [(h.session, h.frame) for h in page.hits] == want
    assert all(h.source == "labels" and "turns left at 90" in h.caption for h in page.hits)

    shard = sessions["beta"] / "annotations" / "caption" / "shard-00000.parquet"
    shard.parent.mkdir(parents=True)
    pq.write_table(pa.table({"frame_index": pa.array([3, 30], pa.int64()),
                             "t": [0.1, 1.0], "caption": ["A red CRATE by the path",
                                                          "the player turns left at 90"]}),
                   shard)
    try:
        crate = search_captions(sessions, "red crate", 10, 0)
        assert [(h.session, h.frame, h.source) for h in crate.hits] == [("beta", 3, "model")]
        assert crate.hits[0].t == pytest.approx(0.1)
        assert search_captions(sessions, "turns left at 90", 500, 0).total == len(want) + 1
    finally:
        shard.unlink()


def test_an_unreadable_label_file_is_left_out(sessions: dict[str, Path], tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "labels.parquet").write_bytes(b"PAR1 not really")
    both = {**sessions, "broken": broken}
    query = StateFilter.model_validate({"where": [{"field": "speed", "op": ">", "value": 0}],
                                        "limit": 500})
    assert search_state(both, query) == search_state(sessions, query)
    assert search_captions(both, "turns", 10, 0) == search_captions(sessions, "turns", 10, 0)
    assert "leaving" in caplog.text and "broken" in caplog.text


_SCHEMA = pa.schema([("speed", pa.float64()), ("grounded", pa.bool_()),
                     ("humanoid_state", pa.string()), ("keys", pa.list_(pa.string()))])
_VALUES = st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=40))


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(["speed", "grounded", "humanoid_state", "key", "airborne"]),
       op=st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "between", "in"]),
       first=st.one_of(_VALUES, st.lists(_VALUES, max_size=3)),
       second=st.one_of(_VALUES, st.lists(_VALUES, max_size=3)))
def test_values_never_reach_the_sql_text(field, op, first, second) -> None:
    """Whatever the values, the SQL is the same for the same field and op (values are only
    parameters), or the condition is refused with a FilterError."""
    fields = fields_from_schema(_SCHEMA)
    out = []
    for value in (first, second):
        try:
            out.append(compile_filter([Condition(field=field, op=op, value=value)], fields))
        except FilterError:
            out.append(None)
    sqls = {sql for sql, _ in filter(None, out)}
    assert len(sqls) <= 1 or (op == "in" and all(o is not None for o in out))
    for compiled, value in zip(out, (first, second), strict=True):
        if compiled is not None:
            values = value if isinstance(value, list) else [value]
            assert compiled[0].count("?") == len(compiled[1])
            assert compiled[1] in (values, [values])
