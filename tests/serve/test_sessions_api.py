"""The sessions list: what it reports, checked against the session's files read directly."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from tests.serve._http import get_json


def test_the_list_reports_the_demo_session_from_its_files(served, demo_sessions):
    status, body = get_json(served.base, "/api/sessions", served.token)
    assert status == 200
    (entry,) = [s for s in body["sessions"] if s["id"] == "demo"]
    labels = pq.read_table(demo_sessions / "demo" / "labels.parquet", columns=["t"])
    t = labels.column("t").to_pylist()
    manifest = json.loads((demo_sessions / "demo" / "session.json").read_text())
    assert entry["status"] == manifest["status"] == "complete"
    assert entry["labels"]["rows"] == labels.num_rows
    assert entry["aligned_rows"] == pq.read_metadata(demo_sessions / "demo" /
                                                     "aligned.parquet").num_rows
    assert abs(entry["duration_s"] - (max(t) - min(t))) < 1e-9
    assert entry["video"] is True
    assert entry["annotations"] == []


def test_the_list_reports_alignment_quality_from_alignment_json(served, demo_sessions):
    report = json.loads((demo_sessions / "sim" / "alignment.json").read_text())
    status, body = get_json(served.base, "/api/sessions", served.token)
    assert status == 200
    (entry,) = [s for s in body["sessions"] if s["id"] == "sim"]
    alignment = entry["alignment"]
    assert alignment["methods"] == report["methods"] and sum(report["methods"].values()) > 0
    assert alignment["matched"] == report["matched"]
    assert alignment["frames"] == report["frames"]
    assert alignment["offset_ms"] == report["clock"]["offset_ms"]
    assert alignment["offset_std_ms"] == report["clock"]["offset_std_ms"]
    assert alignment["latency_ms"] == report["latency_ms"]
    assert alignment["latency_bound_ms"] == report["latency_bound_ms"]
    assert entry["labels"] is None and entry["aligned_rows"] == report["frames"]


def test_an_unreadable_manifest_is_listed_with_the_reason(served, demo_sessions):
    broken = demo_sessions / "broken"
    broken.mkdir()
    (broken / "session.json").write_text("{not json")
    status, body = get_json(served.base, "/api/sessions", served.token)
    (entry,) = [s for s in body["sessions"] if s["id"] == "broken"]
    assert status == 200 and entry["status"] == "unreadable"
    assert "not a valid manifest" in entry["error"]


def test_a_label_window_is_the_parquet_rows_with_their_video_times(served, demo_sessions):
    folder = demo_sessions / "demo"
    labels = pq.read_table(folder / "labels.parquet").to_pylist()
    aligned = pq.read_table(folder / "aligned.parquet", columns=["frame_index", "pts_us"])
    pts = dict(zip(aligned["frame_index"].to_pylist(), aligned["pts_us"].to_pylist(),
                   strict=True))
    status, body = get_json(served.base, "/api/sessions/demo/labels?start=5&count=7",
                            served.token)
    assert status == 200
    assert [r["frame_index"] for r in body["rows"]] == list(range(5, 12))
    for row in body["rows"]:
        truth = labels[row["frame_index"]]
        assert row["root_px"] == truth["root_px"]
        assert row["caption"] == truth["caption"] and row["keys"] == truth["keys"]
        assert row["pts_us"] == pts[row["frame_index"]]
        assert len(row["objects"]) == len(truth["objects"])


def test_label_windows_are_bounded_and_checked(served):
    for query in ("count=1001", "count=0", "start=-1", "start=abc", "count=1e3",
                  "start=9999999999999"):
        status, body = get_json(served.base, f"/api/sessions/demo/labels?{query}",
                                served.token)
        assert status == 400, query
        assert body["error"]["code"] in ("bad_window", "bad_query")
    status, body = get_json(served.base, "/api/sessions/demo/labels?start=100000&count=10",
                            served.token)
    assert status == 200 and body["rows"] == []
