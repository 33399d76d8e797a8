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
