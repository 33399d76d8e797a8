"""The dataset card read back as Markdown: every figure it states is checked against the
exported data files, the session files or a hand-worked value, and its label table against
docs/labels.md."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest

from capture import Session
from pipeline.export import ACTION_NAMES, STATE_NAMES, ExportOptions, export_sessions
from tests.pipeline.card_kit import DOCS, bullets, documented_prose, parse_card, sections
from tests.pipeline.export_kit import labelled

# the report's scalars go on the card, its lists and objects do not
REPORT = {"method": "timecode", "frames": 5, "residual_ms_p95": 1.5,
          "matches": [[0, 0], [1, 2]], "clock": {"offset_s": 0.25}}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Sessions a, b, c (the last frame of each has no state) as parquet, split 2 / 1, with
    only frames 1-3 of b, so b's first kept frame is not at t = 0."""
    parent = tmp_path_factory.mktemp("card")
    a = labelled(parent, "a", [0.0, 0.04, 0.1, 0.13, 0.2, 0.25])
    b = labelled(parent, "b", [0.0, 0.03, 0.07, 0.12, 0.15])
    c = labelled(parent, "c", [0.0, 0.05, 0.09, 0.14])
    Session.open(a).file("alignment").write_text(json.dumps(REPORT))
    Session.open(b).file("alignment").write_text("[1, 2]")  # not a report: left out
    out = parent / "pq"
    counts = export_sessions([a, b, c], "parquet", out, ExportOptions(
        splits=(("train", 0.67), ("val", 0.33)), frames=(("b", ((1, 3),)),)))
    return out, counts, {"a": a, "b": b, "c": c}


def _doc_units() -> dict[str, str]:
    """field -> unit from docs/labels.md's labels.parquet table and its `objects` table."""
    units, prefix = {}, ""
    for line in (DOCS / "labels.md").read_text().splitlines():
        if line.startswith("Each `objects` element"):
            prefix = "objects[]."
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 3:
            for name in re.findall(r"`([^`]+)`", cells[0]):
                units[prefix + name] = cells[-2]
    return units


def test_card_states_the_exports_true_figures(exported):
    root, counts, paths = exported
    header, blocks = parse_card((root / "README.md").read_text())
    shape = [f"h2 {v}" if k == "h2" else k for k, v in blocks]
    assert shape == ["h1", "list", "p", "h2 Labels", "table", "p", "p", "h2 Sessions",
                     *["h3", "list"] * 3, "h2 Counts", "fence", "h2 Citation", "fence"]
    assert blocks[0] == ("h1", "STPE dataset (parquet)")
    part = sections(blocks)
    data = pq.read_table(root / "data").to_pydict()
    rows_of = {s: [i for i, v in enumerate(data["session"]) if v == s] for s in paths}
    span = {s: max(data["t"][i] for i in r) - min(data["t"][i] for i in r)
            for s, r in rows_of.items()}
    # by hand: a keeps frames 0-4 (0.2 s), b 1-3 (0.12 - 0.03), c 0-2 (0.09): 0.38 s over
    # 11 frames, (11 - 3) intervals / 0.38 s = 21.0526 frames/s
    assert span == pytest.approx({"a": 0.2, "b": 0.09, "c": 0.09})
    assert len(data["t"]) == 11
    in_split = {name: {v for p in root.glob(f"data/{name}-*.parquet")
                       for v in pq.read_table(p).column("session").to_pylist()}
                for name in ("train", "val")}
    assert in_split["train"] | in_split["val"] == set(paths)
    assert not in_split["train"] & in_split["val"]
    assert bullets(part[""][1][1]) == {
        "sessions": "3", "frames": "11", "duration": "0.380 s",
        "mean frame rate": "21.053 frames/s", "timecode strip": "mask",
        "frame rate cap": "none",
        "splits (by session)": f"train {len(in_split['train'])}, val {len(in_split['val'])}"}

    prose = part[""][2][1]
    assert " ".join(prose.split()) == documented_prose("parquet")
    assert prose.endswith(".") and not set(re.findall(r"`([^`]+)`", prose)) - set(data)
    refs = re.findall(r"(?<![\w/])docs/\w+\.md", prose)
    assert refs == ["docs/labels.md", "docs/conventions.md"]
    assert all((DOCS.parent / ref).is_file() for ref in refs)

    (_, (head, table)), (_, state), (_, action) = part["Labels"]
    assert head == ["field", "unit", "meaning"]
    units = _doc_units()
    assert len(table) == 8 and all(len(row) == 3 for row in table)
    assert {row[0].strip("`"): row[1] for row in table} == {
        row[0].strip("`"): units[row[0].strip("`")] for row in table}
    for text, column, names in ((state, "observation.state", STATE_NAMES),
                                (action, "action", ACTION_NAMES)):
        match = re.fullmatch(rf"`{re.escape(column)}` \((\d+)\): (.+)", text)
        assert match, text
        assert int(match[1]) == len(data[column][0]) == len(names)
        assert match[2].split(", ") == list(names)

    listed = part["Sessions"]
    assert [v for k, v in listed[::2]] == list(dict.fromkeys(data["session"]))
    for (_, name), (_, items) in zip(listed[::2], listed[1::2], strict=True):
        facts = bullets(items)
        assert facts.pop("frames exported") == str(len(rows_of[name]))
        metadata = pq.read_schema(paths[name] / "labels.parquet").metadata
        assert json.loads(facts.pop("label summary").strip("`")) == json.loads(
            metadata[b"stpe.labels.summary"])
        if name == "a":
            assert json.loads(facts.pop("alignment").strip("`")) == {
                "method": "timecode", "frames": 5, "residual_ms_p95": 1.5}
        assert facts == {}, name

    (_, (info, body)), = part["Counts"]
    assert info == "json" and json.loads(body) == counts and counts["rows"] == 11
    (_, (info, body)), = part["Citation"]
    assert info == "bibtex" and body.startswith("@misc{") and body.endswith("}\n")
    assert body.count("{") == body.count("}")

    sizes = {s["name"]: s["num_bytes"] for s in header["dataset_info"]["splits"]}
    assert sizes == {name: sum(p.stat().st_size for p in root.glob(f"data/{name}-*.parquet"))
                     for name in ("train", "val")}


def test_card_of_a_single_frame_has_no_frame_rate(tmp_path):
    one = labelled(tmp_path, "one", [0.0, 0.033])  # one frame with state: no interval
    export_sessions([one], "coco", tmp_path / "c", ExportOptions(fps_cap=12.5))
    _, blocks = parse_card((tmp_path / "c/README.md").read_text())
    assert blocks[0] == ("h1", "STPE dataset (coco)")
    assert bullets(blocks[1][1]) == {
        "sessions": "1", "frames": "1", "duration": "0.000 s", "mean frame rate": "n/a",
        "timecode strip": "mask", "frame rate cap": "12.5", "splits (by session)": "train 1"}
